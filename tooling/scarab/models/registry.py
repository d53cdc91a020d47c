"""The stage's model registry: push, list, promote, rollback, split, rm, push-data.

Table `<app>-<stage>-models` (partition `name`, sort `version`) and bucket
`<app>-<stage>-models-<account>-<region>`, both created by `scarab deploy`. Every S3
call passes ExpectedBucketOwner (the stage's account).

A version item (written once; versions are immutable):
    name, version, kind, description (S), input_schema (S: JSON), labels (L of S),
    metrics (S: JSON object), artifact_uri (S: s3://<bucket>/models/<name>/<sha256>.onnx),
    sha256 (S), created_at (S: ISO 8601 UTC, seconds), source (S: "push"),
    and data_uri (S: s3://<bucket>/data/<name>/<sha256>.csv) once push-data sets it.
The aliases item (version "~aliases"):
    live (S), candidate (S) and candidate_weight (N, 1-100) while a split runs,
    history (L of S: earlier live versions, most recent last), revision (N, +1 per write).

Every aliases write is a transaction conditioned on the revision this command read (or
on the item's absence), together with a check that the version it points at exists: two
concurrent promotes cannot both win, and a promote cannot race an rm of its version.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from scarab.aws import Aws, aws_errors, error_code
from scarab.config import ScarabConfig
from scarab.errors import ScarabError
from scarab.models import Refused, use_function_code
from scarab.stage import Stage, open_stage

if TYPE_CHECKING:
    from lens.predict.sources import Aliases

    from scarab.models.convert import Prepared

# Earlier live versions kept for rollback (bounds the aliases item's size).
HISTORY_LIMIT = 50
SHORT_SHA = 12
CONFLICT = (
    "The aliases of model '{name}' changed while this command ran (another promote, split,"
    " rollback or rm); nothing was changed. Run the command again."
)


@dataclass(frozen=True)
class ModelRegistry:
    """The stage's registry table and artifacts bucket."""

    stage: Stage
    table: str
    bucket: str
    owner: str  # the account that must own the bucket

    @property
    def aws(self) -> Aws:
        return self.stage.aws

    def ddb(self) -> Any:
        return self.aws.client("dynamodb")

    def s3(self) -> Any:
        return self.aws.client("s3")

    @property
    def not_deployed(self) -> str:
        return (
            f"The stage {self.stage.names.stage} has no model registry yet (table"
            f" {self.table}, bucket {self.bucket}). Run 'scarab deploy' first."
        )


def open_registry(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> ModelRegistry:
    use_function_code(project_dir)
    st = open_stage(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)
    with aws_errors():
        account = st.aws.account_id
    names = st.names
    return ModelRegistry(
        st, names.registry_table, names.models_bucket(account, st.aws.region), account
    )


# -- items -------------------------------------------------------------------------------


def _plain(raw: dict[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    return {key: deserialize(value) for key, value in raw.items()}


def _key(name: str, version: str) -> dict[str, Any]:
    return {"name": {"S": name}, "version": {"S": version}}


def _get(reg: ModelRegistry, name: str, version: str) -> dict[str, Any] | None:
    with aws_errors({"ResourceNotFoundException": reg.not_deployed}):
        got = reg.ddb().get_item(TableName=reg.table, Key=_key(name, version), ConsistentRead=True)
    return _plain(got["Item"]) if "Item" in got else None


def _aliases_version() -> str:
    from lens.predict.sources import ALIASES_VERSION

    return ALIASES_VERSION


def _model_items(reg: ModelRegistry, name: str) -> list[dict[str, Any]]:
    """Every item of model `name` (its versions and its aliases item)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": reg.table,
        "KeyConditionExpression": "#n = :n",
        "ExpressionAttributeNames": {"#n": "name"},
        "ExpressionAttributeValues": {":n": {"S": name}},
        "ConsistentRead": True,
    }
    with aws_errors({"ResourceNotFoundException": reg.not_deployed}):
        while True:
            page = reg.ddb().query(**kwargs)
            items.extend(_plain(raw) for raw in page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _all_items(reg: ModelRegistry) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": reg.table, "ConsistentRead": True}
    with aws_errors({"ResourceNotFoundException": reg.not_deployed}):
        while True:
            page = reg.ddb().scan(**kwargs)
            items.extend(_plain(raw) for raw in page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def version_item(
    reg: ModelRegistry,
    prepared: Prepared,
    *,
    name: str,
    version: str,
    description: str,
    metrics: dict[str, Any],
    threshold: float | None = None,
    positive_label: str | None = None,
    host: str | None = None,
) -> dict[str, Any]:
    """The version item of `prepared` (DynamoDB wire format), checked with the function's
    own parser (lens.predict.sources.entry_from_item): what it would skip is refused.
    `threshold` and `positive_label` (binary classifiers): the function's decision rule,
    default 0.5 and the second label. `host` ("sagemaker:<endpoint>"): the endpoint the
    function forwards this version's predictions to."""
    from lens.predict.sources import entry_from_item
    from pydantic import ValidationError

    key = f"models/{name}/{prepared.sha256}.onnx"
    item = {
        **_key(name, version),
        "kind": {"S": prepared.kind},
        "description": {"S": description},
        "input_schema": {"S": json.dumps(prepared.input_schema)},
        "labels": {"L": [{"S": label} for label in prepared.labels]},
        "metrics": {"S": json.dumps(metrics, sort_keys=True)},
        "artifact_uri": {"S": f"s3://{reg.bucket}/{key}"},
        "sha256": {"S": prepared.sha256},
        "created_at": {"S": _now()},
        "source": {"S": "push"},
    }
    if threshold is not None:
        item["threshold"] = {"N": _number(threshold)}
    if positive_label is not None:
        item["positive_label"] = {"S": positive_label}
    if host is not None:
        item["host"] = {"S": host}
    if prepared.kind == "forecaster":
        # A forecaster's ONNX takes the function's own feature row (lens.predict.forecast
        # builds it); the function checks the entry names exactly those features.
        from lens.predict.forecast import FEATURE_NAMES

        item["features"] = {"L": [{"S": f} for f in FEATURE_NAMES]}
    try:
        entry_from_item(_plain(item))
    except (ValueError, TypeError, ValidationError) as exc:
        raise Refused(f"The function could not serve this model: {_first(exc)}") from None
    return item


def _first(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'model'}: {err['msg']}"
            for err in exc.errors()
        )[:500]
    return str(exc)[:500]


# -- S3 -----------------------------------------------------------------------------------


def _check_bucket(reg: ModelRegistry) -> None:
    try:
        reg.s3().head_bucket(Bucket=reg.bucket, ExpectedBucketOwner=reg.owner)
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            raise ScarabError(reg.not_deployed) from None
        if code in ("403", "AccessDenied"):
            raise ScarabError(
                f"The bucket {reg.bucket} is not this account's ({reg.owner}) or this identity"
                " may not use it; nothing was pushed."
            ) from None
        with aws_errors():
            raise


def _upload(reg: ModelRegistry, key: str, data: bytes, content_type: str) -> bool:
    """Put `data` at `key` unless it is there already (keys are content addressed);
    True when uploaded."""
    s3 = reg.s3()
    try:
        s3.head_object(Bucket=reg.bucket, Key=key, ExpectedBucketOwner=reg.owner)
        return False
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            with aws_errors():
                raise
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
    with aws_errors():
        s3.put_object(
            Bucket=reg.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumSHA256=digest,  # S3 refuses bytes that arrive changed
            ExpectedBucketOwner=reg.owner,
        )
    return True


# -- push -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushResult:
    name: str
    version: str
    sha256: str
    artifact_uri: str
    pushed: bool  # False: the version was there already with the same bytes
    uploaded: bool
    promoted: str | None = None  # what --promote did


def push(
    reg: ModelRegistry,
    prepared: Prepared,
    *,
    name: str,
    version: str,
    description: str = "",
    metrics: dict[str, Any] | None = None,
    promote_it: bool = False,
    threshold: float | None = None,
    positive_label: str | None = None,
    host: str | None = None,
) -> PushResult:
    """Upload the ONNX bytes, then register the version (never overwriting one), then
    with `promote_it` make it live."""
    item = version_item(
        reg,
        prepared,
        name=name,
        version=version,
        description=description,
        metrics=metrics or {},
        threshold=threshold,
        positive_label=positive_label,
        host=host,
    )
    uri = item["artifact_uri"]["S"]
    existing = _get(reg, name, version)
    pushed = uploaded = False
    if existing is not None:
        _same_bytes(existing, prepared.sha256, name, version)
        _same_decision(existing, _plain(item), name, version)
    else:
        _check_bucket(reg)
        uploaded = _upload(
            reg, f"models/{name}/{prepared.sha256}.onnx", prepared.onnx, "application/octet-stream"
        )
        try:
            reg.ddb().put_item(
                TableName=reg.table,
                Item=item,
                ConditionExpression="attribute_not_exists(version)",
            )
            pushed = True
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                with aws_errors({"ResourceNotFoundException": reg.not_deployed}):
                    raise
            # Pushed by someone else since we looked: the same bytes are fine.
            raced = _get(reg, name, version)
            if raced is None:
                raise ScarabError(f"Pushing {name} {version} failed; run it again.") from None
            _same_bytes(raced, prepared.sha256, name, version)
            _same_decision(raced, _plain(item), name, version)
            uri = str(raced.get("artifact_uri", uri))
    promoted = promote(reg, name, version) if promote_it else None
    return PushResult(name, version, prepared.sha256, uri, pushed, uploaded, promoted)


def _same_bytes(existing: dict[str, Any], sha256: str, name: str, version: str) -> None:
    if existing.get("sha256") != sha256:
        raise Refused(
            f"Model {name} already has a version {version} with other bytes (sha256"
            f" {str(existing.get('sha256'))[:SHORT_SHA]}, this file's {sha256[:SHORT_SHA]});"
            " versions never change: push it as a new version."
        )


def _same_decision(existing: dict[str, Any], item: dict[str, Any], name: str, version: str) -> None:
    """The same bytes with another threshold, positive label or host is another version
    too."""
    for key, option in (
        ("threshold", "--threshold"),
        ("positive_label", "--positive-label"),
        ("host", "--host"),
    ):
        had, asked = existing.get(key), item.get(key)
        if (None if had is None else str(had)) != (None if asked is None else str(asked)):
            raise Refused(
                f"Model {name} already has a version {version} with {key}"
                f" {'unset' if had is None else had} (this push: {option}"
                f" {'unset' if asked is None else asked}); versions never change: push it as a"
                " new version."
            )


# -- aliases --------------------------------------------------------------------------------


def _aliases_item(name: str, aliases: Aliases) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_key(name, _aliases_version()),
        "history": {"L": [{"S": v} for v in aliases.history]},
        "revision": {"N": str(aliases.revision)},
    }
    if aliases.live is not None:
        item["live"] = {"S": aliases.live}
    if aliases.candidate is not None and aliases.candidate_weight > 0:
        item["candidate"] = {"S": aliases.candidate}
        item["candidate_weight"] = {"N": _number(aliases.candidate_weight)}
    return item


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _read_aliases(reg: ModelRegistry, name: str) -> tuple[dict[str, Any] | None, Aliases]:
    from lens.predict.sources import Aliases, aliases_from_item

    raw = _get(reg, name, _aliases_version())
    return raw, aliases_from_item(raw) if raw is not None else Aliases(None)


def _unchanged_since(raw: dict[str, Any] | None) -> dict[str, Any]:
    """The condition that the aliases item is as this command read it."""
    if raw is None:
        return {"ConditionExpression": "attribute_not_exists(version)"}
    if "revision" not in raw:
        return {
            "ConditionExpression": "attribute_exists(version) AND attribute_not_exists(revision)"
        }
    return {
        "ConditionExpression": "revision = :rev",
        "ExpressionAttributeValues": {":rev": {"N": str(raw["revision"])}},
    }


def _exists(reg: ModelRegistry, name: str, version: str) -> dict[str, Any]:
    return {
        "ConditionCheck": {
            "TableName": reg.table,
            "Key": _key(name, version),
            "ConditionExpression": "attribute_exists(version)",
        }
    }


def _transact(
    reg: ModelRegistry, name: str, items: list[dict[str, Any]], missing: list[str]
) -> None:
    """TransactWriteItems; item 0 is the aliases write or check (its failure: CONFLICT),
    item i > 0 checks version missing[i - 1] (its failure: that version is gone)."""
    try:
        reg.ddb().transact_write_items(TransactItems=items)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "TransactionCanceledException":
            with aws_errors({"ResourceNotFoundException": reg.not_deployed}):
                raise
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        gone = [
            v
            for v, code in zip(missing, reasons[1:], strict=False)
            if code == "ConditionalCheckFailed"
        ]
        if gone and (not reasons or reasons[0] != "ConditionalCheckFailed"):
            raise ScarabError(
                f"Model {name} has no version {gone[0]} any more (removed meanwhile);"
                " nothing was changed."
            ) from None
        raise ScarabError(CONFLICT.format(name=name)) from None


Change = Callable[["Aliases"], "Aliases | None"]


def update_aliases(reg: ModelRegistry, name: str, change: Change) -> tuple[Aliases, Aliases | None]:
    """Read model `name`'s aliases, apply `change` (None: nothing to do) and write the
    result if the item is still as read and the versions it names (live, candidate)
    still exist; a concurrent write makes this one fail with CONFLICT (nothing
    changed). Returns (before, after)."""
    raw, before = _read_aliases(reg, name)
    after = change(before)
    if after is None:
        return before, None
    after = replace(after, revision=before.revision + 1)
    item = _aliases_item(name, after)
    put = {"Put": {"TableName": reg.table, "Item": item, **_unchanged_since(raw)}}
    named = [v["S"] for k, v in item.items() if k in ("live", "candidate")]
    named = list(dict.fromkeys(named))
    _transact(reg, name, [put, *(_exists(reg, name, v) for v in named)], named)
    return before, after


def _require_version(reg: ModelRegistry, name: str, version: str) -> dict[str, Any]:
    item = _get(reg, name, version)
    if item is None:
        raise Refused(
            f"Model {name} has no version {version}; 'scarab models list' shows the versions."
        )
    return item


def promote(reg: ModelRegistry, name: str, version: str) -> str:
    """Make `version` live; the previous live version goes onto the history. Promoting
    the candidate ends the split."""
    _require_version(reg, name, version)

    def change(a: Aliases) -> Aliases | None:
        if a.live == version:
            return None
        history = ([*a.history, a.live] if a.live else list(a.history))[-HISTORY_LIMIT:]
        ended = a.candidate == version
        return replace(
            a,
            live=version,
            history=tuple(history),
            candidate=None if ended else a.candidate,
            candidate_weight=0.0 if ended else a.candidate_weight,
        )

    before, after = update_aliases(reg, name, change)
    if after is None:
        return f"{name} {version} is live already; nothing changed."
    was = f" (was {before.live})" if before.live else ""
    ended = " The split with it ended." if before.candidate == version else ""
    return f"{name} {version} is live{was}.{ended}"


def rollback(reg: ModelRegistry, name: str) -> str:
    """Make the previous live version live again (popped from the history)."""

    def change(a: Aliases) -> Aliases | None:
        if not a.history:
            raise Refused(
                f"Model {name} has no earlier live version to roll back to"
                + (f" ({a.live} is live)." if a.live else ".")
            )
        previous = a.history[-1]
        ended = a.candidate == previous
        return replace(
            a,
            live=previous,
            history=a.history[:-1],
            candidate=None if ended else a.candidate,
            candidate_weight=0.0 if ended else a.candidate_weight,
        )

    before, after = update_aliases(reg, name, change)
    assert after is not None  # change never answers "nothing to do"
    return f"{name} {after.live} is live again (was {before.live})."


def split(reg: ModelRegistry, name: str, version: str, weight: float) -> str:
    """Serve `version` to `weight` percent of unpinned requests (0 ends the split)."""
    if weight > 0:
        _require_version(reg, name, version)

    def change(a: Aliases) -> Aliases | None:
        if weight <= 0:
            if a.candidate is None:
                return None
            if a.candidate != version:
                raise Refused(
                    f"The candidate of {name} is {a.candidate}, not {version}; 'scarab models"
                    f" split {name} {a.candidate} --weight 0' ends its split."
                )
            return replace(a, candidate=None, candidate_weight=0.0)
        if a.live is None:
            raise Refused(f"Model {name} has no live version; promote one before a split.")
        if a.live == version:
            raise Refused(
                f"{name} {version} is the live version; a candidate must be another version."
            )
        if a.candidate == version and a.candidate_weight == weight:
            return None
        return replace(a, candidate=version, candidate_weight=weight)

    before, after = update_aliases(reg, name, change)
    if after is None:
        if weight <= 0:
            return f"{name} has no split running; nothing changed."
        return f"{name} {version} gets {_number(weight)}% already; nothing changed."
    if weight <= 0:
        return f"The split of {name} ended: {before.live} gets every request."
    return f"{name} {version} gets {_number(weight)}% of requests, {before.live} the rest."


def remove(reg: ModelRegistry, name: str, version: str) -> str:
    """Delete a version that is neither live nor candidate (and drop it from the
    history); its artifact goes too when no other version of the model uses it."""
    item = _require_version(reg, name, version)
    raw, aliases = _read_aliases(reg, name)
    if version == aliases.live:
        raise Refused(f"{name} {version} is live; promote another version before removing it.")
    if version == aliases.candidate and aliases.candidate_weight > 0:
        raise Refused(
            f"{name} {version} is the candidate of a split; end it first ('scarab models split"
            f" {name} {version} --weight 0')."
        )
    guard: dict[str, Any]
    if version in aliases.history:
        kept = replace(
            aliases,
            history=tuple(v for v in aliases.history if v != version),
            revision=aliases.revision + 1,
        )
        guard = {
            "Put": {
                "TableName": reg.table,
                "Item": _aliases_item(name, kept),
                **_unchanged_since(raw),
            }
        }
    else:
        guard = {
            "ConditionCheck": {
                "TableName": reg.table,
                "Key": _key(name, _aliases_version()),
                **_unchanged_since(raw),
            }
        }
    sha = str(item.get("sha256", ""))
    delete = {
        "Delete": {
            "TableName": reg.table,
            "Key": _key(name, version),
            "ConditionExpression": "sha256 = :sha",
            "ExpressionAttributeValues": {":sha": {"S": sha}},
        }
    }
    _transact(reg, name, [guard, delete], [version])
    others = [
        i for i in _model_items(reg, name) if i.get("sha256") == sha and i["version"] != version
    ]
    uri = str(item.get("artifact_uri", ""))
    if others:
        shared = ", ".join(sorted(str(i["version"]) for i in others))
        return f"Removed {name} {version}; its artifact stays (version {shared} uses it too)."
    if not uri.startswith(f"s3://{reg.bucket}/"):
        return f"Removed {name} {version}."
    key = uri.removeprefix(f"s3://{reg.bucket}/")
    with aws_errors():
        reg.s3().delete_object(Bucket=reg.bucket, Key=key, ExpectedBucketOwner=reg.owner)
    return (
        f"Removed {name} {version} and its artifact {key} (the versioned bucket keeps the"
        " bytes as a noncurrent version until you delete them)."
    )


# -- list -----------------------------------------------------------------------------------


def alias_names(aliases: Aliases, version: str) -> list[str]:
    """The aliases naming `version`: "live", "candidate:<weight>" (percent)."""
    names = []
    if version == aliases.live:
        names.append("live")
    if version == aliases.candidate and aliases.candidate_weight > 0:
        names.append(f"candidate:{_number(aliases.candidate_weight)}")
    return names


def list_versions(reg: ModelRegistry) -> list[dict[str, Any]]:
    """One row per version, by model name then creation time: name, version, kind,
    aliases, sha256, created_at, metrics (a JSON object)."""
    from lens.predict.sources import Aliases, aliases_from_item

    items = _all_items(reg)
    marker = _aliases_version()
    aliases = {str(i["name"]): aliases_from_item(i) for i in items if i.get("version") == marker}
    rows = []
    for item in items:
        name, version = str(item.get("name")), str(item.get("version"))
        if version == marker:
            continue
        try:
            metrics = json.loads(str(item.get("metrics") or "{}"))
        except json.JSONDecodeError:
            metrics = {}
        rows.append(
            {
                "name": name,
                "version": version,
                "kind": str(item.get("kind", "")),
                "aliases": alias_names(aliases.get(name, Aliases(None)), version),
                "sha256": str(item.get("sha256", "")),
                "created_at": str(item.get("created_at", "")),
                "metrics": metrics if isinstance(metrics, dict) else {},
            }
        )
    return sorted(rows, key=lambda r: (r["name"], r["created_at"], r["version"]))


# -- push-data --------------------------------------------------------------------------------


def push_data(reg: ModelRegistry, name: str, path: Path) -> str:
    """Upload a forecaster's recent observations (CSV) and point its live version's
    `data_uri` at them."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Refused(f"Cannot read {path}: {exc.strerror or exc}.") from None
    _check_csv(path, data)
    _, aliases = _read_aliases(reg, name)
    if aliases.live is None:
        raise Refused(f"Model {name} has no live version; push and promote one first.")
    item = _require_version(reg, name, aliases.live)
    if item.get("kind") != "forecaster":
        raise Refused(f"{name} {aliases.live} is a {item.get('kind')}; only forecasters take data.")
    _check_bucket(reg)
    sha = hashlib.sha256(data).hexdigest()
    key = f"data/{name}/{sha}.csv"
    _upload(reg, key, data, "text/csv")
    uri = f"s3://{reg.bucket}/{key}"
    try:
        reg.ddb().update_item(
            TableName=reg.table,
            Key=_key(name, aliases.live),
            UpdateExpression="SET data_uri = :uri",
            ConditionExpression="attribute_exists(version)",
            ExpressionAttributeValues={":uri": {"S": uri}},
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise ScarabError(f"{name} {aliases.live} was removed meanwhile.") from None
        with aws_errors():
            raise
    return f"{name} {aliases.live} reads its observations from {uri}."


def _check_csv(path: Path, data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"{path} is not a UTF-8 CSV file.") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or "," not in lines[0]:
        raise Refused(f"{path} is not a CSV file with a header row and observations.")
    # What the function does with it (lens.predict.forecast): refuse what it would refuse.
    from lens.predict.forecast import parse_observations

    try:
        parse_observations(text)
    except ValueError as exc:
        raise Refused(f"{path} cannot be forecast from: {str(exc)[:300]}") from None
