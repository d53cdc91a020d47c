"""Bring up what `scarab serve` fronts: the emulator, the deployed stage, the Gemini key.

Deploys go through the deploy tool's own library (`scarab.deploy.deploy`, the same
code path as real AWS, with the artifact flavor for the local interpreter) and the
key through `scarab.secrets.set_secret`, so the function reads it exactly as in AWS.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from scarab import layout
from scarab.config import ScarabConfig
from scarab.emulator import Emulator, find_running, start_embedded
from scarab.errors import ScarabError

GEMINI_KEY_VARIABLES = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
# The prediction log's local database URL (contract with lens.log.LOCAL_URL_ENV).
LOCAL_LOG_URL_ENV = "SCARAB_LOG_LOCAL_URL"


@dataclass
class LocalStack:
    """The deployed stage serve answers for."""

    project_dir: Path
    endpoint_url: str
    region: str
    stage: str
    rest_api_id: str
    emulator: Emulator | None  # set when serve started the emulator (and must stop it)
    gemini_key_stored: bool = False
    # Local-only variables for every worker (the prediction log's SQLite file).
    worker_env: dict[str, str] = field(default_factory=dict)
    app: str = ""  # the app name (the stage's alarms are named `<app>-<stage>-...`)

    def close(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None


def emulator_session(config: ScarabConfig) -> boto3.Session:
    """A session with the fake credentials the emulator accepts (no AWS account needed)."""
    from scarab.emulator import emulator_session as session

    return session(config.resolved_region)


def open_emulator(project_dir: Path) -> tuple[str, Emulator | None]:
    """The running emulator recorded for this project, or a new embedded one."""
    running = find_running(project_dir)
    if running is not None:
        return running, None
    emulator = start_embedded(project_dir)
    return emulator.url, emulator


def prepare(
    project_dir: Path,
    *,
    stage: str | None,
    deploy: bool,
    progress: Callable[[str], None],
) -> LocalStack:
    """Start or reuse the emulator, deploy the working tree into it, store the Gemini key."""
    from scarab.config import load_config

    config = load_config(project_dir, {"stage": stage})
    endpoint_url, emulator = open_emulator(project_dir)
    try:
        progress(f"emulator {'started' if emulator else 'reused'} at {endpoint_url}")
        rest_api_id: str | None
        stored = False
        if deploy:
            from scarab.deploy import deploy as run_deploy
            from scarab.deploy import make_aws

            aws = make_aws(config, endpoint_url=endpoint_url, session=emulator_session(config))
            result = run_deploy(
                config,
                project_dir=project_dir,
                endpoint_url=endpoint_url,
                flavor="local",
                progress=progress,
                aws=aws,
            )
            rest_api_id = result.rest_api_id
            gemini_key = next(
                (os.environ[v] for v in GEMINI_KEY_VARIABLES if os.environ.get(v, "").strip()),
                None,
            )
            if gemini_key is not None:
                from scarab.secrets import set_secret

                set_secret(
                    config,
                    gemini_key,
                    project_dir=project_dir,
                    endpoint_url=endpoint_url,
                    aws=make_aws(
                        config, endpoint_url=endpoint_url, session=emulator_session(config)
                    ),
                )
                stored = True
        else:
            rest_api_id = find_rest_api(project_dir, config.stage, endpoint_url, config.app)
        if not rest_api_id:
            raise ScarabError(
                f"No REST API is deployed for stage '{config.stage}' in the emulator; "
                "run without --no-deploy."
            )
        return LocalStack(
            project_dir=project_dir,
            endpoint_url=endpoint_url,
            region=config.resolved_region,
            stage=config.stage,
            rest_api_id=rest_api_id,
            emulator=emulator,
            gemini_key_stored=stored,
            worker_env=local_log_environment(config, project_dir),
            app=config.app,
        )
    except BaseException:
        if emulator is not None:
            emulator.stop()
        raise


def local_log_environment(config: ScarabConfig, project_dir: Path) -> dict[str, str]:
    """What serve's workers need to write the prediction log to .scarab/local/predictions.db
    ([log] enabled; nothing when it is off). A file path, not a secret: the workers get it
    in their environment like GOOGLE_GEMINI_BASE_URL, and lens.log takes only a sqlite URL
    from there."""
    if not config.log.enabled:
        return {}
    from scarab.deploy.models import LOG_ENABLED_ENV, LOG_STAGE_ENV, LOG_STORE_INPUTS_ENV

    path = (project_dir / layout.PREDICTIONS_DB).resolve()
    return {
        LOG_ENABLED_ENV: "true",
        LOG_STORE_INPUTS_ENV: "true" if config.log.store_inputs else "false",
        LOG_STAGE_ENV: config.stage,
        LOCAL_LOG_URL_ENV: f"sqlite:///{path}",
    }


def find_rest_api(project_dir: Path, stage: str, endpoint_url: str, app: str) -> str | None:
    """The REST API for `stage`: from the local state record, else by name in the emulator."""
    from scarab.deploy.state import load_state
    from scarab.serve.watcher import emulator_clients

    state = load_state(project_dir, stage, endpoint_url)
    from scarab.config import load_config

    region = load_config(project_dir, {"stage": stage}).resolved_region
    apigw, _ = emulator_clients(endpoint_url, region)
    candidates = [state.rest_api_id] if state.rest_api_id else []
    try:
        apis = apigw.get_rest_apis(limit=500).get("items") or []
    except (ClientError, BotoCoreError):
        return None
    wanted = f"{app}-{stage}"
    candidates += [a["id"] for a in apis if a.get("name") == wanted]
    candidates += [a["id"] for a in apis if a.get("name") != wanted]
    for api_id in dict.fromkeys(candidates):
        try:
            stages = apigw.get_stages(restApiId=api_id).get("item") or []
        except (ClientError, BotoCoreError):
            continue  # recorded in state but gone from the emulator
        if any(s.get("stageName") == stage for s in stages):
            return str(api_id)
    return None
