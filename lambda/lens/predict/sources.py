"""Where the registry comes from: the package, or the DynamoDB table, through a TTL cache.

With SCARAB_MODEL_DIR set, its registry.json is the registry, table or not. Otherwise,
with MODEL_REGISTRY_TABLE unset every packaged model (artifacts/registry.json) is its
own live version, exactly as before the table existed. With it set, the table is the
registry: version items (partition `name`, sort `version`) and one `~aliases` item per
model (`live`, optional `candidate` + `candidate_weight` 0-100, `history`, `revision`).

The table is read whole (one paginated Scan: a registry holds tens of items, and
GET /models needs all of them) at most once per SCARAB_REGISTRY_TTL_S seconds (default
60) per container, so a push or a promote is served within the TTL without a redeploy.
A failed refresh keeps serving the last good view for up to SCARAB_REGISTRY_STALE_S
seconds (default 900), logging each failure and retrying at most every few seconds;
past that, or before any read succeeded, requests get 503 `registry_unavailable`.

Powertools' DynamoDBProvider was considered: it maps one sort key to one value
attribute (our items carry a dozen), cannot list every model in one call, and on an
expired cache it raises instead of serving the last good value. So boto3 is used
directly (the Lambda runtime ships it; it is not in the zip), with short timeouts.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from lens.observability import logger
from lens.predict.registry import (
    ARTIFACTS_DIR,
    PACKAGED_DIR,
    Artifact,
    ModelEntry,
    Registry,
    registry,
)

TABLE_ENV = "MODEL_REGISTRY_TABLE"
TTL_ENV = "SCARAB_REGISTRY_TTL_S"
STALE_ENV = "SCARAB_REGISTRY_STALE_S"
DEFAULT_TTL_S = 60.0
DEFAULT_STALE_S = 900.0
# After a failed refresh, the next attempt waits at least this long (never longer than
# the TTL): a throttled or unreachable table is not hammered once per request.
RETRY_AFTER_FAILURE_S = 5.0
ALIASES_VERSION = "~aliases"

Clock = Callable[[], float]


class RegistryUnavailable(Exception):
    """No registry can be served (the table was never readable, or stale for too long)."""


@dataclass(frozen=True)
class Aliases:
    """A model's aliases item: what /predict/{name} serves."""

    live: str | None
    candidate: str | None = None
    candidate_weight: float = 0.0
    history: tuple[str, ...] = ()
    revision: int = 0

    def of(self, version: str) -> list[str]:
        """The aliases naming `version` ("live", "candidate")."""
        names = []
        if version == self.live:
            names.append("live")
        if version == self.candidate and self.candidate_weight > 0:
            names.append("candidate")
        return names


@dataclass(frozen=True)
class RegisteredModel:
    """Every version of one model, and its aliases."""

    name: str
    versions: dict[str, ModelEntry]
    aliases: Aliases

    def live(self) -> ModelEntry | None:
        return self.versions.get(self.aliases.live) if self.aliases.live else None

    def candidate(self) -> ModelEntry | None:
        alias = self.aliases
        if alias.candidate is None or alias.candidate_weight <= 0:
            return None
        return self.versions.get(alias.candidate)

    def summary(self) -> dict[str, Any] | None:
        """What GET /models shows: the live version (None when there is none), its
        aliases, and the candidate's version and weight while a split runs."""
        live = self.live()
        if live is None:
            return None
        item = {**live.summary(), "aliases": self.aliases.of(live.version)}
        candidate = self.candidate()
        if candidate is not None and candidate.version != live.version:
            item["candidate"] = {
                "version": candidate.version,
                "weight": self.aliases.candidate_weight,
            }
        return item


@dataclass(frozen=True)
class RegistryView:
    """The registry as one request sees it."""

    models: dict[str, RegisteredModel]
    origin: str  # "package" or "dynamodb:<table>"
    read_at: float = 0.0

    def names(self) -> list[str]:
        return sorted(self.models)

    def get(self, name: str) -> RegisteredModel | None:
        return self.models.get(name)


def packaged_view(packaged: Registry) -> RegistryView:
    """The packaged registry: each model's one version is live."""
    models = {
        entry.name: RegisteredModel(entry.name, {entry.version: entry}, Aliases(live=entry.version))
        for entry in packaged.models
    }
    return RegistryView(models, "package")


@lru_cache(maxsize=1)
def _packaged() -> RegistryView:
    return packaged_view(registry())


def choose(model: RegisteredModel, rng: random.Random) -> ModelEntry | None:
    """The version an unpinned request gets: the candidate for candidate_weight percent
    of draws, else live (None when the model has no servable live version)."""
    live = model.live()
    candidate = model.candidate()
    if candidate is not None and rng.random() * 100.0 < model.aliases.candidate_weight:
        return candidate
    return live


# -- the table ------------------------------------------------------------------------


def _text(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def _json_attr(item: dict[str, Any], key: str) -> Any:
    value = item.get(key)
    return json.loads(value) if isinstance(value, str) and value.strip() else None


def entry_from_item(item: dict[str, Any]) -> ModelEntry:
    """A version item (deserialized: str, Decimal, list) -> ModelEntry; ValueError
    (or pydantic.ValidationError) when the item is malformed."""
    metrics = _json_attr(item, "metrics")
    schema = _json_attr(item, "input_schema")
    if not isinstance(schema, dict):
        raise ValueError("input_schema is not a JSON object")
    threshold = item.get("threshold")
    fields: dict[str, Any] = {
        "name": item.get("name"),
        "version": item.get("version"),
        "kind": item.get("kind"),
        "description": _text(item, "description") or "",
        "input_schema": schema,
        "artifact": Artifact(path=str(item.get("artifact_uri") or "")),
        "sha256": item.get("sha256"),
        "labels": [str(label) for label in item.get("labels") or []],
        "metrics": metrics if isinstance(metrics, dict) else {},
        "created_at": _text(item, "created_at"),
        "source": _text(item, "source"),
        "data_uri": _text(item, "data_uri"),
        "host": _text(item, "host"),
        "positive_label": _text(item, "positive_label"),
        "threshold": float(threshold) if threshold is not None else None,
    }
    if isinstance(item.get("features"), list):
        fields["features"] = [str(name) for name in item["features"]]
    if not fields["artifact"].path.startswith("s3://"):
        raise ValueError("artifact_uri is not an s3:// URI")
    return ModelEntry.model_validate(fields)


def _number(value: Any) -> float | None:
    """A finite number, or None for anything else (a weight written by hand as "30%")."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def aliases_from_item(item: dict[str, Any]) -> Aliases:
    """The aliases of a model. A malformed split (weight not a number) is dropped, logged,
    and `live` keeps serving: one bad attribute must not take the model down."""
    weight = _number(item.get("candidate_weight") or 0)
    candidate = _text(item, "candidate")
    if weight is None:
        logger.error(
            "candidate_weight is not a number; the split is ignored",
            extra={"model": str(item.get("name"))[:64]},
        )
        weight, candidate = 0.0, None
    history = item.get("history")
    return Aliases(
        live=_text(item, "live"),
        candidate=candidate,
        candidate_weight=min(max(weight, 0.0), 100.0),
        history=tuple(str(v) for v in history) if isinstance(history, list) else (),
        revision=int(_number(item.get("revision")) or 0),
    )


def view_from_items(items: list[dict[str, Any]], origin: str, read_at: float) -> RegistryView:
    """Group the table's items by model. A malformed item is logged and left out (one
    bad push must not take every model down)."""
    versions: dict[str, dict[str, ModelEntry]] = {}
    aliases: dict[str, Aliases] = {}
    for item in items:
        name, version = item.get("name"), item.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        try:
            if version == ALIASES_VERSION:
                aliases[name] = aliases_from_item(item)
            else:
                versions.setdefault(name, {})[version] = entry_from_item(item)
        except (ValueError, TypeError, ValidationError) as exc:
            logger.error(
                "registry item skipped",
                extra={"model": name[:64], "version": version[:64], "error": str(exc)[:300]},
            )
    models: dict[str, RegisteredModel] = {}
    for name in sorted(set(versions) | set(aliases)):
        model = RegisteredModel(name, versions.get(name, {}), aliases.get(name, Aliases(None)))
        if model.aliases.live is not None and model.live() is None:
            logger.error(
                "live alias names a missing version",
                extra={"model": name, "version": model.aliases.live},
            )
        models[name] = model
    return RegistryView(models, origin, read_at)


class TableSource:
    """Reads the whole registry table (boto3; AWS_ENDPOINT_URL reaches an emulator)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            # Short: a request waits for this read only once per TTL, never for long.
            config = Config(
                connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"}
            )
            self._client = boto3.client("dynamodb", config=config)
        return self._client

    def drop_client(self) -> None:
        """Forget the client (and its pooled connections): the next read makes one."""
        self._client = None

    def read(self) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        deserialize = TypeDeserializer().deserialize
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.client().scan(**kwargs)
            items.extend(
                {key: deserialize(value) for key, value in raw.items()} for raw in page["Items"]
            )
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class CachedRegistry:
    """A TableSource read through a per-container cache (see the module docstring)."""

    source: TableSource
    ttl_s: float = DEFAULT_TTL_S
    stale_s: float = DEFAULT_STALE_S
    clock: Clock = time.monotonic
    _view: RegistryView | None = None
    _next_read: float = 0.0
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def view(self) -> RegistryView:
        now = self.clock()
        view = self._view
        if view is not None and now < self._next_read:
            return view
        with self._guard:  # one refresh at a time; the others wait for its result
            now = self.clock()
            if self._view is not None and now < self._next_read:
                return self._view
            return self._refresh(now)

    def _refresh(self, now: float) -> RegistryView:
        origin = f"dynamodb:{self.source.table}"
        try:
            items = self.source.read()
        except Exception as exc:  # boto errors, throttling, a missing table, no permission
            return self._stale(now, exc)
        self._view = view_from_items(items, origin, now)
        self._next_read = now + self.ttl_s
        return self._view

    def _stale(self, now: float, exc: Exception) -> RegistryView:
        view = self._view
        age = None if view is None else now - view.read_at
        logger.error(
            "registry refresh failed",
            extra={
                "table": self.source.table,
                "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                "serving_stale_s": None if age is None else round(age, 1),
            },
        )
        if view is None or age is None or age > self.stale_s:
            self._next_read = 0.0
            raise RegistryUnavailable(str(exc)) from exc
        self._next_read = now + min(self.ttl_s, RETRY_AFTER_FAILURE_S)
        return view


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    # float() reads "inf" and "1e400" as infinity: a TTL that never ends would never
    # serve a push, so only a finite, non-negative number counts.
    if not math.isfinite(value) or value < 0:
        logger.warning("not a number of seconds; using the default", extra={"variable": name})
        return default
    return value


_cached: CachedRegistry | None = None
_clock: Clock | None = None
_rng = random.Random()
_lock = threading.Lock()


def current() -> RegistryView:
    """The registry this request sees (RegistryUnavailable when the table cannot be read)."""
    global _cached
    table = os.environ.get(TABLE_ENV, "").strip()
    # SCARAB_MODEL_DIR (read at import) is the registry instead of the table, whatever
    # else is set: SageMaker's /opt/ml/model holds exactly the endpoint's models.
    if not table or ARTIFACTS_DIR != PACKAGED_DIR:
        return _packaged()
    with _lock:
        if _cached is None or _cached.source.table != table:
            _cached = CachedRegistry(
                TableSource(table),
                ttl_s=_seconds(TTL_ENV, DEFAULT_TTL_S),
                stale_s=_seconds(STALE_ENV, DEFAULT_STALE_S),
                clock=_clock or time.monotonic,
            )
        cached = _cached
    return cached.view()


def rng() -> random.Random:
    """The generator that splits traffic between live and candidate."""
    return _rng


def drop_clients() -> None:
    """Forget the registry table's client (its pool); the cached view stays."""
    with _lock:
        if _cached is not None:
            _cached.source.drop_client()


def reset(*, clock: Clock | None = None, rng: random.Random | None = None) -> None:
    """Forget the cached table view and re-read the environment on next use; tests pass
    a clock (to step past the TTL) and a seeded generator."""
    global _cached, _clock, _rng
    with _lock:
        _cached = None
        _clock = clock
        _rng = rng if rng is not None else random.Random()
