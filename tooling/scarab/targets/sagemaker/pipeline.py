"""--target sagemaker as a library: models -> pack -> desired -> reader -> planner ->
executor -> record; destroy is the same pipeline with the deletion planner.

The image tag comes from the server image's build context (image_tag), and
model.tar.gz is packed locally, so a plan or dry run is exact with no docker and makes
only read calls; a redeploy with nothing changed makes no mutating call at all (the
lock is taken only when there is something to do).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from scarab.artifacts.image import SERVER_DOCKERFILE, image_tag
from scarab.aws import Aws, aws_errors, call
from scarab.config import ScarabConfig
from scarab.deploy.executor import Executor
from scarab.deploy.instructions import Step
from scarab.errors import ConfigError, ScarabError
from scarab.stage import Stage, open_stage
from scarab.targets.repository import kept_note, still_used_by
from scarab.targets.sagemaker.bundle import pack
from scarab.targets.sagemaker.catalog import endpoint_models
from scarab.targets.sagemaker.desired import (
    ARCHITECTURE,
    DesiredEndpoint,
    desired_endpoint,
    name_problem,
)
from scarab.targets.sagemaker.planner import plan_deploy, plan_destroy
from scarab.targets.sagemaker.reader import describe_endpoint, read_endpoint
from scarab.targets.sagemaker.record import check_region, delete_record, record_path, save_record

Progress = Callable[[str], None]
# SageMaker Serverless takes request bodies of at most 4 MB.
MAX_PAYLOAD = 4 * 2**20


@dataclass
class EndpointResult:
    stage: str
    region: str
    endpoint: str
    steps: list[Step]
    dry_run: bool
    models: list[str] = field(default_factory=list)
    models_from: str = ""
    image_uri: str = ""
    model_data_url: str = ""
    endpoint_config: str = ""
    model_name: str = ""
    aws_calls: int = 0
    mutating_calls: int = 0
    kept: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not self.steps

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": "sagemaker",
            "stage": self.stage,
            "region": self.region,
            "endpoint": self.endpoint,
            "endpoint_config": self.endpoint_config,
            "model": self.model_name,
            "models": self.models,
            "models_from": self.models_from,
            "image_uri": self.image_uri,
            "model_data_url": self.model_data_url,
            "up_to_date": self.up_to_date,
            "dry_run": self.dry_run,
            "plan": [s.as_dict() for s in self.steps],
            "aws_calls": self.aws_calls,
            "mutating_calls": self.mutating_calls,
        }


def _stage(
    config: ScarabConfig, project_dir: Path, endpoint_url: str | None, session: boto3.Session | None
) -> Stage:
    aws = Aws(config.configured_region, endpoint_url=endpoint_url, session=session)
    st = open_stage(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)
    problem = name_problem(st.names)
    if problem:
        raise ConfigError(f"scarab.toml: {problem}.")
    check_region(st.project_dir, st.names.stage, aws)
    return st


def _desired(st: Stage, progress: Progress | None) -> tuple[str, DesiredEndpoint]:
    config, aws = st.config, st.aws
    tag = image_tag(st.project_dir, ARCHITECTURE, SERVER_DOCKERFILE)
    origin, models = endpoint_models(aws, st.names, st.project_dir, list(config.sagemaker.models))
    bundle = pack(st.project_dir, models)
    if progress:
        progress(
            f"model.tar.gz of {', '.join(bundle.models)} (from {origin}):"
            f" {bundle.sha256[:12]} ({bundle.size / 2**20:.1f} MB)"
        )
    return origin, desired_endpoint(
        config, account_id=aws.account_id, region=aws.region, partition=aws.partition,
        project_dir=st.project_dir, image_tag=tag, bundle=bundle,
    )  # fmt: skip


def deploy_endpoint(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    dry_run: bool = False,
    force_unlock: bool = False,
    progress: Progress | None = None,
    session: boto3.Session | None = None,
) -> EndpointResult:
    """Make the endpoint match `config` (or with `dry_run` only plan it)."""
    st = _stage(config, project_dir.resolve(), endpoint_url, session)
    aws = st.aws

    def survey() -> tuple[str, DesiredEndpoint, list[Step]]:
        with aws_errors():
            origin, d = _desired(st, progress)
            keep = frozenset({d.model_name, d.config_name})
            obs = read_endpoint(aws, st.names, image_tag=d.image_tag, key=d.key, keep=keep)
        return origin, d, plan_deploy(d, obs)

    origin, d, steps = survey()
    if steps and not dry_run:
        with st.lock("deploy --target sagemaker", force=force_unlock, progress=progress):
            origin, d, steps = survey()  # again under the lock: another run may have acted
            Executor(aws).execute(steps, progress=progress)
    if not dry_run:
        save_record(st.project_dir, st.names.stage, aws.endpoint_url, _record(st, d))
    return EndpointResult(
        stage=st.names.stage, region=aws.region, endpoint=d.endpoint, steps=steps,
        dry_run=dry_run, models=list(d.bundle.models), models_from=origin,
        image_uri=d.image_uri, model_data_url=d.model_data_url,
        endpoint_config=d.config_name, model_name=d.model_name,
        aws_calls=len(aws.log.calls), mutating_calls=len(aws.log.mutating),
    )  # fmt: skip


def _record(st: Stage, d: DesiredEndpoint) -> dict[str, Any]:
    aws = st.aws
    return {
        "app": st.names.app,
        "stage": st.names.stage,
        "region": aws.region,
        "account_id": aws.account_id,
        "endpoint_url": aws.endpoint_url if aws.local else None,
        "endpoint": d.endpoint,
        "endpoint_config": d.config_name,
        "model": d.model_name,
        "models": list(d.bundle.models),
        "image_uri": d.image_uri,
        "model_data_url": d.model_data_url,
        "role_arn": d.role_arn,
        "memory_mb": d.memory_mb,
        "max_concurrency": d.max_concurrency,
        "updated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def destroy_endpoint(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    include_images: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    session: boto3.Session | None = None,
) -> EndpointResult:
    """Delete what the target made (the ECR repository only with `include_images`)."""
    st = _stage(config, project_dir.resolve(), endpoint_url, session)
    aws = st.aws
    bucket = st.names.artifact_bucket(aws.account_id, aws.region)

    kept: list[str] = []

    def survey() -> list[Step]:
        with aws_errors():
            obs = read_endpoint(aws, st.names, image_tag=None, key=None)
            user = still_used_by(aws, st.names, "sagemaker") if include_images else None
        kept[:] = [kept_note(st.names, user)] if user else []
        return plan_destroy(
            st.names, obs, bucket=bucket, owner=aws.account_id,
            include_images=include_images and user is None,
        )  # fmt: skip

    steps = survey()
    if steps and not dry_run:
        with st.lock("destroy --target sagemaker", progress=progress):
            steps = survey()
            Executor(aws).execute(steps, progress=progress)
    if not dry_run:
        delete_record(st.project_dir, st.names.stage, aws.endpoint_url)
    return EndpointResult(
        stage=st.names.stage, region=aws.region, endpoint=st.names.endpoint, steps=steps,
        dry_run=dry_run, aws_calls=len(aws.log.calls), mutating_calls=len(aws.log.mutating),
        kept=kept,
    )  # fmt: skip


def endpoint_status(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
) -> dict[str, Any]:
    """The endpoint as SageMaker has it: status, config, memory, concurrency, model,
    the models it serves and its image (read-only)."""
    st = _stage(config, project_dir.resolve(), endpoint_url, session)
    aws = st.aws
    out: dict[str, Any] = {
        "target": "sagemaker",
        "stage": st.names.stage,
        "region": aws.region,
        "endpoint": st.names.endpoint,
        "status": "NotDeployed",
    }
    with aws_errors():
        found = describe_endpoint(aws, st.names.endpoint)
        if found is None:
            return out
        name, variant, model = _serving(aws, found)
    serverless = variant.get("ServerlessConfig", {})
    container = model.get("PrimaryContainer", {})
    out.update(
        status=found.get("EndpointStatus"),
        failure_reason=found.get("FailureReason"),
        endpoint_arn=found.get("EndpointArn"),
        endpoint_config=name,
        memory_mb=serverless.get("MemorySizeInMB"),
        max_concurrency=serverless.get("MaxConcurrency"),
        model=variant["ModelName"],
        models=_served_models(model),
        image=container.get("Image"),
        model_data_url=container.get("ModelDataUrl"),
        role_arn=model.get("ExecutionRoleArn"),
        record=str(record_path(st.project_dir, st.names.stage, aws.endpoint_url)),
    )
    return out


def _serving(aws: Aws, endpoint: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The endpoint's EndpointConfig name, its variant and that variant's Model."""
    sm = aws.client("sagemaker")
    name = str(endpoint.get("EndpointConfigName", ""))
    variant = call(sm.describe_endpoint_config, EndpointConfigName=name)["ProductionVariants"][0]
    return name, variant, dict(call(sm.describe_model, ModelName=variant["ModelName"]))


def _served_models(model: dict[str, Any]) -> list[str]:
    env = model.get("PrimaryContainer", {}).get("Environment", {})
    return [m for m in str(env.get("SCARAB_ENDPOINT_MODELS", "")).split(",") if m]


@dataclass(frozen=True)
class Invocation:
    endpoint: str
    model: str
    content_type: str
    body: Any  # the answer: JSON when it is JSON, else its text


def check_request(model: str | None, data: str | None) -> bytes:
    """The request body of `invoke --model NAME --data JSON`, checked (usage errors)."""
    if not model:
        raise ConfigError("Missing option '--model': the registry model to call.")
    if data is None:
        raise ConfigError("Missing option '--data': the request body, as JSON.")
    try:
        json.loads(data)
    except ValueError as exc:
        raise ConfigError(f"--data is not JSON ({exc}).") from None
    body = data.encode()
    if len(body) > MAX_PAYLOAD:
        raise ConfigError(
            f"--data is {len(body)} bytes; SageMaker Serverless takes at most {MAX_PAYLOAD}."
        )
    return body


def invoke_endpoint(
    config: ScarabConfig,
    *,
    project_dir: Path,
    model: str,
    body: bytes,
    endpoint_url: str | None = None,
    session: boto3.Session | None = None,
) -> Invocation:
    """InvokeEndpoint with the model named in CustomAttributes (the server's contract)."""
    st = _stage(config, project_dir.resolve(), endpoint_url, session)
    aws = st.aws
    name = st.names.endpoint
    with aws_errors():
        found = describe_endpoint(aws, name)
        if found is None:
            raise ScarabError(
                f"The stage {st.names.stage} has no SageMaker endpoint {name};"
                " run 'scarab deploy --target sagemaker' first."
            )
        served = _served_models(_serving(aws, found)[2])
        if served and model not in served:
            raise ConfigError(
                f"--model {model}: the endpoint {name} serves {', '.join(served)}"
                " ([sagemaker] models)."
            )
        got = call(
            aws.client("sagemaker-runtime").invoke_endpoint,
            EndpointName=name,
            Body=body,
            ContentType="application/json",
            Accept="application/json",
            CustomAttributes=f"model={model}",
        )
        raw = got["Body"].read()
    text = raw.decode("utf-8", errors="replace")
    try:
        answer: Any = json.loads(text)
    except ValueError:
        answer = text
    return Invocation(name, model, str(got.get("ContentType", "")), answer)
