"""API keys of a stage: list, create, rotate (zero-downtime overlap), revoke.

Key values are returned only by `create_key`/`rotate_key` (the new key) and
`get_key_value`; nothing here logs them or writes them to the state record.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scarab.aws import Aws, aws_errors, call
from scarab.config import ScarabConfig
from scarab.deploy.executor import Executor
from scarab.deploy.instructions import Step
from scarab.deploy.planner import API_KEY_ID, USAGE_PLAN_ID, key_instructions
from scarab.deploy.reader import read_plan_and_keys
from scarab.errors import ScarabError
from scarab.stage import Stage, open_stage


@dataclass
class KeyInfo:
    id: str
    name: str
    enabled: bool
    created: str
    in_plan: bool
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.value is None:
            data.pop("value")
        return data


def _create_and_attach(st: Stage, plan_id: str, name: str) -> str:
    """Create a key tagged for the stage and put it in the usage plan (the instructions
    a first deploy runs for its key); returns its id."""
    step = Step(
        f"apigateway.api_key {name}", "create", "asked for", key_instructions(st.names, name)
    )
    executor = Executor(st.aws, {USAGE_PLAN_ID: plan_id})
    executor.execute([step])
    return str(executor.values[API_KEY_ID])


def _stage(
    config: ScarabConfig, project_dir: Path, endpoint_url: str | None, aws: Aws | None
) -> Stage:
    return open_stage(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)


def list_keys(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    aws: Aws | None = None,
    include_values: bool = False,
) -> list[KeyInfo]:
    """The stage's keys (named <app>-<stage>-key-N, or attached to its usage plan)."""
    st = _stage(config, project_dir, endpoint_url, aws)
    with aws_errors():
        _, keys = read_plan_and_keys(st.aws, st.names, st.state.usage_plan_id)
        out = [KeyInfo(k.id, k.name, k.enabled, k.created, k.in_plan) for k in keys]
        if include_values:
            for info in out:
                info.value = _value(st.aws, info.id)
    return sorted(out, key=lambda k: (_number(k.name), k.created, k.id))


def _number(name: str) -> int:
    m = re.search(r"-key-(\d+)$", name)
    return int(m.group(1)) if m else 0


def _value(aws: Aws, key_id: str) -> str:
    got = call(aws.client("apigateway").get_api_key, apiKey=key_id, includeValue=True)
    return str(got["value"])


def get_key_value(
    config: ScarabConfig,
    key_id: str,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> str:
    st = _stage(config, project_dir, endpoint_url, aws)
    missing = {"NotFoundException": f"No API key {key_id}. 'scarab keys list' shows the keys."}
    with aws_errors(missing):
        return _value(st.aws, key_id)


def create_key(
    config: ScarabConfig,
    name: str | None = None,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> KeyInfo:
    """A new key in the stage's usage plan; the returned KeyInfo carries its value."""
    st = _stage(config, project_dir, endpoint_url, aws)
    with st.lock("keys rotate" if name is None else "keys create"), aws_errors():
        plan_id = st.usage_plan_id()
        _, keys = read_plan_and_keys(st.aws, st.names, plan_id)
        if name is None:
            n = max([_number(k.name) for k in keys] + [0]) + 1
            name = st.names.key(n)
        if any(k.name == name for k in keys):
            raise ScarabError(f"A key named {name} already exists; pick another name.")
        key_id = _create_and_attach(st, plan_id, name)
        got = call(st.aws.client("apigateway").get_api_key, apiKey=key_id, includeValue=True)
    return KeyInfo(
        key_id,
        name,
        bool(got.get("enabled")),
        str(got.get("createdDate", "")),
        True,
        str(got["value"]),
    )


def rotate_key(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> KeyInfo:
    """Create the next key in the same usage plan. The old keys keep working until
    revoked, so clients can switch over with no downtime."""
    return create_key(config, None, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)


def revoke_key(
    config: ScarabConfig,
    key_id: str,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> None:
    """Detach the key from the usage plan and delete it; the gateway refuses it at once."""
    st = _stage(config, project_dir, endpoint_url, aws)
    apigw = st.aws.client("apigateway")
    with st.lock("keys revoke"), aws_errors():
        _, keys = read_plan_and_keys(st.aws, st.names, st.state.usage_plan_id)
        if key_id not in {k.id for k in keys}:
            raise ScarabError(
                f"{key_id} is not a key of the stage {st.names.stage}."
                " 'scarab keys list' shows its keys."
            )
        plan = next((k for k in keys if k.id == key_id), None)
        if plan is not None and plan.in_plan:
            call(apigw.delete_usage_plan_key, usagePlanId=st.usage_plan_id(), keyId=key_id)
        call(apigw.delete_api_key, apiKey=key_id)
