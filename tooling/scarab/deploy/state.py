"""The state record of a stage: ids and ARNs, never secrets.

Real AWS: `.scarab/state/<stage>.json`. Any explicit endpoint (--local, --endpoint-url,
AWS_ENDPOINT_URL: moto, LocalStack, however it is spelled) is not AWS:
`.scarab/local/state/<stage>.json`, with the endpoint recorded in the record, so emulator
ids never overwrite real ones.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic validates it on Python 3.11 too

from scarab import layout
from scarab.aws import Aws, is_emulator
from scarab.errors import EXIT_USAGE, ScarabError


class StateError(ScarabError):
    """The state record exists but cannot be trusted (exit 2): it is never guessed around."""

    exit_code = EXIT_USAGE


class FunctionRecord(TypedDict, total=False):
    """One function of the stage as the last deploy left it."""

    name: str
    arn: str
    role_arn: str
    log_group: str
    code_sha256: str | None
    image_uri: str | None
    # The environment variables scarab set on it (so a lost tag still knows them).
    managed_env: list[str]
    # The Function URL scarab made ([functions.<name>.url]); absent: none.
    url: str | None
    # Where that URL is: "live" (the alias, where scarab makes it since versions came);
    # absent: on the function itself (earlier scarab versions).
    url_on: str | None


@dataclass
class StageState:
    app: str = ""
    stage: str = ""
    region: str = ""
    account_id: str = ""
    endpoint_url: str | None = None
    rest_api_id: str | None = None
    usage_plan_id: str | None = None
    api_key_ids: list[str] = field(default_factory=list)
    url: str | None = None
    # By catalog name (analyze, models).
    functions: dict[str, FunctionRecord] = field(default_factory=dict)
    updated_at: str | None = None
    # Written by scarab before the split (one function): read so the variables it set
    # on that function are still known as scarab's.
    managed_env: list[str] = field(default_factory=list)

    def managed_envs(self) -> dict[str, list[str]]:
        """The variables scarab set, by function (the single function's under `all`)."""
        out = {key: list(rec.get("managed_env", [])) for key, rec in self.functions.items()}
        if self.managed_env:
            out.setdefault("all", list(self.managed_env))
        return out

    def recorded_urls(self) -> frozenset[str]:
        """The functions whose Function URL scarab made (by catalog name)."""
        return frozenset(key for key, rec in self.functions.items() if rec.get("url"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageState:
        """Validate each field strictly (wrong type: ValueError naming the fields);
        fields a newer scarab added are ignored."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for name, adapter in _field_adapters().items():
            if name not in data:
                continue
            try:
                values[name] = adapter.validate_python(data[name], strict=True)
            except ValidationError as exc:
                problems.append(f"{name}: {exc.errors()[0]['msg']}")
        if problems:
            raise ValueError("; ".join(problems))
        return cls(**values)

    def check_owner(self, app: str, account_id: str) -> None:
        """Refuse a record written for another app or AWS account (copied from another
        project, or the credentials point elsewhere): its ids are not this stage's."""
        for what, mine, theirs in (
            ("app", app, self.app),
            ("account", account_id, self.account_id),
        ):
            if theirs and theirs != mine:
                raise StateError(
                    f"The state record of stage {self.stage} belongs to {what} {theirs}, but"
                    f" this run is for {what} {mine}. Check the credentials (AWS_PROFILE) and"
                    " scarab.toml's app; if the record is simply wrong, move it aside"
                    " (.scarab/state/<stage>.json) and re-run: scarab finds the stage by"
                    " its names and tags."
                )

    def check_region(self, aws: Aws) -> None:
        """Refuse to act on the stage from another region than the one it lives in.

        IAM is global and everything else is regional: a command pointed at the wrong
        region would fork the stage (deploy) or pull its role from under it (destroy).
        """
        if not self.region or self.region == aws.region:
            return
        # A record from another emulator instance says nothing about this one.
        if aws.local and self.endpoint_url != aws.endpoint_url:
            return
        raise ScarabError(
            f"Stage {self.stage} is deployed in {self.region}, but this run targets"
            f' {aws.region}. Pass --region {self.region} (or set region = "{self.region}"'
            f" in scarab.toml) to work on it, or to move it run"
            f" 'scarab destroy --region {self.region}' first and then deploy in {aws.region}."
        )


@functools.cache
def _field_adapters() -> dict[str, TypeAdapter[Any]]:
    hints = typing.get_type_hints(StageState)
    return {f.name: TypeAdapter(hints[f.name]) for f in fields(StageState)}


def state_path(project_dir: Path, stage: str, endpoint_url: str | None) -> Path:
    return project_dir / layout.state_dir(local=is_emulator(endpoint_url)) / f"{stage}.json"


def lock_path(project_dir: Path, stage: str, endpoint_url: str | None) -> Path:
    """The file `scarab` flocks while it changes the stage (next to its state record)."""
    return state_path(project_dir, stage, endpoint_url).with_suffix(".lock")


def load_state(project_dir: Path, stage: str, endpoint_url: str | None) -> StageState:
    """The stage's record; an empty one if there is none (the reader then finds the
    resources by name and tags). A record that exists but cannot be read is refused."""
    path = state_path(project_dir, stage, endpoint_url)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return StageState()
    except (OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, f"it cannot be read ({_reason(exc)})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _unreadable(path, f"it is not valid JSON ({exc})") from None
    except RecursionError:
        raise _unreadable(path, "it is nested too deeply to be a state record") from None
    if not isinstance(data, dict):
        raise _unreadable(path, f"it holds a JSON {type(data).__name__}, not an object")
    try:
        state = StageState.from_dict(data)
    except ValueError as exc:
        raise _unreadable(path, f"fields have the wrong type ({exc})") from None
    if state.stage and state.stage != stage:
        raise _unreadable(path, f"it is the record of stage {state.stage!r}, not {stage!r}")
    return state


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


def _unreadable(path: Path, why: str) -> StateError:
    return StateError(
        f"The state record {path} is unusable: {why}. Move it aside"
        f" (mv {path} {path}.bad) and re-run the command: scarab finds the stage's"
        " resources by their names and tags and writes a new record."
    )


def save_state(project_dir: Path, state: StageState) -> Path:
    """Write the record atomically: a crash mid-write leaves the old one, never half."""
    path = state_path(project_dir, state.stage, state.endpoint_url)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ScarabError(
            f"Cannot write the state record {path} ({_reason(exc)}). Make {path.parent} a"
            " writable directory and re-run the command: it finds what it created by name."
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(state), fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def delete_state(project_dir: Path, stage: str, endpoint_url: str | None) -> None:
    state_path(project_dir, stage, endpoint_url).unlink(missing_ok=True)
