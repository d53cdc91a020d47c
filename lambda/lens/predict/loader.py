"""Lazy, once-per-container loading of ONNX artifacts (packaged or from S3).

An artifact comes from the package (artifacts/<path>) unless the registry entry or
SCARAB_MODEL_ARTIFACTS (JSON: {"model name": "s3://bucket/key"}) points at S3; an S3
entry whose sha256 is a packaged artifact's is read from the package (seeded packaged
models never download). S3 artifacts are downloaded once into SCARAB_MODEL_CACHE_DIR
(default: a directory in /tmp), named by sha256, and the directory is kept within
SCARAB_MODEL_CACHE_MB (default 256) by removing the least recently used files; the same
budget bounds the sessions kept in memory. Every artifact, wherever it came from, must
match the registry's sha256 before onnxruntime sees it. Concurrent first requests for
one artifact load it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from lens.observability import NAMESPACE, logger
from lens.predict.registry import ARTIFACTS_DIR, ModelEntry, registry

ARTIFACTS_ENV = "SCARAB_MODEL_ARTIFACTS"
CACHE_DIR_ENV = "SCARAB_MODEL_CACHE_DIR"
CACHE_MB_ENV = "SCARAB_MODEL_CACHE_MB"
BUCKET_ENV = "ARTIFACTS_BUCKET"
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "scarab-models"
# Lambda's /tmp is 512 MB unless configured larger: half of it for models by default.
DEFAULT_CACHE_MB = 256
# The artifacts bucket is named <app>-<stage>-models-<account>-<region>: its owner.
_BUCKET_ACCOUNT = re.compile(r"-(\d{12})-[a-z]{2}(?:-[a-z]+)+-\d$")


class ModelLoadError(Exception):
    """A model could not be made ready. `public` is safe to show a client; the rest is logged."""

    def __init__(self, model: str, public: str, detail: str = "") -> None:
        super().__init__(f"{model}: {detail or public}")
        self.model = model
        self.public = public
        self.detail = detail


@dataclass(frozen=True)
class LoadedModel:
    """An ONNX session ready to run, with the registry entry it was checked against.

    `output` is the output read: class probabilities for classifiers (`probabilities`
    in skl2onnx's naming), the predicted value for regressors (`variable`).
    """

    entry: ModelEntry
    session: Any  # onnxruntime.InferenceSession (untyped)
    input_name: str
    output: str
    source: str
    load_ms: float

    def run(self, batch: Any) -> Any:
        """The `output` for a batch (n, k), cast to the input's dtype (float32, or float64
        for a model converted with DoubleTensorType)."""
        double = self.session.get_inputs()[0].type == "tensor(double)"
        batch = batch.astype("float64" if double else "float32", copy=False)
        (result,) = self.session.run([self.output], {self.input_name: batch})
        return result

    def probabilities(self, batch: Any) -> Any:
        """Class probabilities, shape (n, len(entry.labels)), for a float32 batch (n, k).

        A classifier converted with ZipMap on answers a list of {class: p} per row: it
        is put back in label order, so either conversion works."""
        result = self.run(batch)
        if isinstance(result, list):
            import numpy as np

            labels = self.entry.labels
            rows = [{str(k): float(v) for k, v in row.items()} for row in result]
            return np.array([[row.get(label, np.nan) for label in labels] for row in rows])
        return result


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_overrides(raw: str | None) -> dict[str, str]:
    """SCARAB_MODEL_ARTIFACTS -> {model name: s3 URI}; raises ValueError when malformed."""
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{ARTIFACTS_ENV} is not valid JSON") from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.startswith("s3://")
        for k, v in value.items()
    ):
        raise ValueError(f'{ARTIFACTS_ENV} must be a JSON object like {{"digits": "s3://b/k"}}')
    return dict(value)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/key -> (bucket, key); ValueError when either part is missing."""
    rest = uri.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return bucket, key


@lru_cache(maxsize=1)
def _packaged_by_sha() -> dict[str, str]:
    """sha256 -> packaged artifact path (relative to artifacts/)."""
    return {
        entry.sha256: entry.artifact.path
        for entry in registry().models
        if not entry.artifact.path.startswith("s3://")
    }


def bucket_owner(bucket: str) -> str | None:
    """The account that must own `bucket` (S3's ExpectedBucketOwner): for the stage's
    artifacts bucket (ARTIFACTS_BUCKET), the account its name carries."""
    if bucket != os.environ.get(BUCKET_ENV, "").strip():
        return None
    match = _BUCKET_ACCOUNT.search(bucket)
    return match.group(1) if match else None


def _cache_budget_bytes() -> int:
    raw = os.environ.get(CACHE_MB_ENV, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_CACHE_MB
    except ValueError:
        logger.warning("not a number of MB; using the default", extra={"variable": CACHE_MB_ENV})
        mb = DEFAULT_CACHE_MB
    return int((mb if mb > 0 else DEFAULT_CACHE_MB) * 1024 * 1024)


@dataclass(frozen=True)
class _Session:
    session: Any
    input_name: str
    outputs: tuple[str, ...]
    source: str
    size: int
    load_ms: float


class ModelStore:
    """Loads each artifact at most once (thread-safe, per sha256) and keeps the loaded
    sessions, least recently used first out, within the cache budget."""

    def __init__(
        self,
        *,
        artifacts_dir: Path = ARTIFACTS_DIR,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        overrides: dict[str, str] | None = None,
        overrides_error: str | None = None,
        budget_bytes: int = DEFAULT_CACHE_MB * 1024 * 1024,
    ) -> None:
        self.artifacts_dir = artifacts_dir
        self.cache_dir = cache_dir
        self.overrides = dict(overrides or {})
        self.budget_bytes = budget_bytes
        self._overrides_error = overrides_error
        self._sessions: OrderedDict[str, _Session] = OrderedDict()  # by sha256, LRU first
        self._loaded: dict[tuple[str, str, str], LoadedModel] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.downloads = 0  # S3 GETs this store made (GET /health, tests)

    @classmethod
    def from_env(cls) -> ModelStore:
        cache_dir = Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR)
        try:
            overrides = parse_overrides(os.environ.get(ARTIFACTS_ENV))
            error = None
        except ValueError as exc:
            overrides, error = {}, str(exc)
        return cls(
            cache_dir=cache_dir,
            overrides=overrides,
            overrides_error=error,
            budget_bytes=_cache_budget_bytes(),
        )

    def loaded_names(self) -> list[str]:
        return sorted({name for name, _, _ in self._loaded})

    def location(self, entry: ModelEntry) -> str:
        """Where this model's artifact is read from: an s3:// URI or a packaged file path."""
        if self._overrides_error is not None:
            raise ModelLoadError(
                entry.name,
                "Model artifacts are misconfigured on the server.",
                self._overrides_error,
            )
        if entry.name in self.overrides:
            return self.overrides[entry.name]
        if entry.artifact.path.startswith("s3://"):
            packaged = _packaged_by_sha().get(entry.sha256)
            if packaged is not None and (self.artifacts_dir / packaged).is_file():
                return str(self.artifacts_dir / packaged)  # same bytes: no download
            return entry.artifact.path
        return str(self.artifacts_dir / entry.artifact.path)

    def get(self, entry: ModelEntry) -> LoadedModel:
        """The loaded model, loading its artifact first if this container has not yet."""
        key = (entry.name, entry.version, entry.sha256)
        loaded = self._loaded.get(key)
        if loaded is not None and entry.sha256 in self._sessions:
            self._touch(entry.sha256)
            return loaded
        with self._guard:
            lock = self._locks.setdefault(entry.sha256, threading.Lock())
        with lock:  # one load per artifact even when requests race
            loaded = self._loaded.get(key)
            if loaded is None or entry.sha256 not in self._sessions:
                session = self._sessions.get(entry.sha256) or self._load(entry)
                loaded = _bind(entry, session)
                with self._guard:
                    self._loaded[key] = loaded
            self._touch(entry.sha256)
        return loaded

    def _touch(self, sha256: str) -> None:
        with self._guard:
            if sha256 in self._sessions:
                self._sessions.move_to_end(sha256)

    def _keep(self, sha256: str, session: _Session) -> None:
        """Remember a session, dropping the least recently used beyond the budget."""
        with self._guard:
            self._sessions[sha256] = session
            self._sessions.move_to_end(sha256)
            while (
                len(self._sessions) > 1
                and sum(s.size for s in self._sessions.values()) > self.budget_bytes
            ):
                old, _ = self._sessions.popitem(last=False)
                self._loaded = {k: v for k, v in self._loaded.items() if k[2] != old}
                logger.info("model session evicted", extra={"sha256": old})

    def _load(self, entry: ModelEntry) -> _Session:
        started = time.perf_counter()
        location = self.location(entry)
        data = self._fetch_s3(entry, location) if location.startswith("s3://") else None
        if data is None:
            data = self._read_packaged(entry, Path(location))
        session = _session(entry, data)
        load_ms = (time.perf_counter() - started) * 1000
        source = location if location.startswith("s3://") else "package"
        logger.info(
            "model loaded",
            extra={
                "model": entry.name,
                "version": entry.version,
                "source": source,
                "load_ms": round(load_ms, 1),
            },
        )
        with single_metric(
            name="ModelLoadTime",
            unit=MetricUnit.Milliseconds,
            value=load_ms,
            namespace=NAMESPACE,
            default_dimensions={"model": entry.name},
        ):
            pass
        loaded = _Session(
            session=session,
            input_name=session.get_inputs()[0].name,
            outputs=tuple(o.name for o in session.get_outputs()),
            source=source,
            size=len(data),
            load_ms=load_ms,
        )
        self._keep(entry.sha256, loaded)
        return loaded

    def _read_packaged(self, entry: ModelEntry, path: Path) -> bytes:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(
                entry.name, f"Model '{entry.name}' is not available in this deployment.", str(exc)
            ) from exc
        _check_sha256(entry, data, "package")
        return data

    def _cache_path(self, entry: ModelEntry) -> Path:
        # Content-addressed: a new sha256 in the registry never reuses an old download.
        return self.cache_dir / f"{entry.name}-{entry.sha256}.onnx"

    def _fetch_s3(self, entry: ModelEntry, uri: str) -> bytes:
        cached = self._cache_path(entry)
        if cached.is_file():
            data = cached.read_bytes()
            if sha256_hex(data) == entry.sha256:
                _touch_file(cached)
                return data
            logger.warning(
                "cached artifact is corrupt; downloading again", extra={"model": entry.name}
            )
            cached.unlink(missing_ok=True)
        data = _download(entry, uri, self.budget_bytes)
        self.downloads += 1
        _check_sha256(entry, data, uri)
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self._make_room(len(data), keep=cached)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".part")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, cached)
            _touch_file(cached)
        except OSError as exc:  # a read-only /tmp costs a download per load, nothing more
            logger.warning(
                "could not cache artifact", extra={"model": entry.name, "error": str(exc)}
            )
        return data

    def _make_room(self, size: int, keep: Path) -> None:
        """Remove cached artifacts until `size` more bytes fit: first those no session
        here uses (least recently used first, by mtime), then those of the least
        recently used sessions."""
        with self._guard:
            in_use = {sha: i for i, sha in enumerate(self._sessions)}  # LRU first
        files = []
        for path in self.cache_dir.glob("*.onnx"):
            try:
                stat = path.stat()
            except OSError:  # removed meanwhile (another container on a shared /tmp)
                continue
            sha = path.stem.rpartition("-")[2]
            rank = (1, in_use[sha]) if sha in in_use else (0, stat.st_mtime_ns)
            files.append((rank, path.name, path, stat.st_size))
        files.sort()
        total = sum(f[3] for f in files)
        for _, _, path, file_size in files:
            if total + size <= self.budget_bytes:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)
            total -= file_size
            logger.info("cached artifact evicted", extra={"file": path.name})


_last_stamp = 0
_stamp_guard = threading.Lock()


def _touch_file(path: Path) -> None:
    """Mark a cached file as just used: its mtime orders eviction (oldest first), strictly
    increasing within a container even where the clock is coarse."""
    global _last_stamp
    with _stamp_guard:
        _last_stamp = max(time.time_ns(), _last_stamp + 1000)
        stamp = _last_stamp
    with contextlib.suppress(OSError):
        os.utime(path, ns=(stamp, stamp))


def _bind(entry: ModelEntry, session: _Session) -> LoadedModel:
    """The loaded session as `entry`'s model, reading the output its kind needs."""
    outputs = session.outputs
    if entry.kind == "tabular-regressor":
        output = "variable" if "variable" in outputs else outputs[0]
    else:
        output = "probabilities" if "probabilities" in outputs else outputs[-1]
    return LoadedModel(
        entry=entry,
        session=session.session,
        input_name=session.input_name,
        output=output,
        source=session.source,
        load_ms=session.load_ms,
    )


def _check_sha256(entry: ModelEntry, data: bytes, source: str) -> None:
    actual = sha256_hex(data)
    if actual != entry.sha256:
        logger.error(
            "artifact sha256 mismatch",
            extra={
                "model": entry.name,
                "source": source,
                "expected": entry.sha256,
                "actual": actual,
            },
        )
        raise ModelLoadError(
            entry.name,
            f"Model '{entry.name}' failed its integrity check: the artifact's sha256 does not "
            "match the registry, so it was not loaded.",
            f"sha256 mismatch for {source}: expected {entry.sha256}, got {actual}",
        )


def _download(entry: ModelEntry, uri: str, budget_bytes: int) -> bytes:
    # boto3 is only needed for S3 artifacts (the Lambda runtime ships it).
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    unavailable = f"Model '{entry.name}' could not be downloaded from its artifact store."
    try:
        bucket, key = parse_s3_uri(uri)
    except ValueError as exc:
        raise ModelLoadError(entry.name, unavailable, str(exc)) from exc
    try:
        owner = bucket_owner(bucket)
        extra = {"ExpectedBucketOwner": owner} if owner else {}
        response = boto3.client("s3").get_object(Bucket=bucket, Key=key, **extra)
        size = int(response.get("ContentLength") or 0)
        if size > budget_bytes:
            response["Body"].close()
            raise ModelLoadError(
                entry.name,
                f"Model '{entry.name}' is larger than this deployment's model cache "
                f"({budget_bytes // (1024 * 1024)} MB, {CACHE_MB_ENV}).",
                f"{uri} is {size} bytes",
            )
        data: bytes = response["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        logger.error(
            "artifact download failed", extra={"model": entry.name, "uri": uri, "error": str(exc)}
        )
        raise ModelLoadError(entry.name, unavailable, str(exc)) from exc
    logger.info("artifact downloaded", extra={"model": entry.name, "uri": uri, "bytes": len(data)})
    return data


def _session(entry: ModelEntry, data: bytes) -> Any:
    import onnxruntime as ort  # imported on first load: keeps /analyze cold starts lean

    options = ort.SessionOptions()
    # Lambda gives a fraction of a vCPU per 1.8 GB; extra threads would only contend.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelLoadError(
            entry.name, f"Model '{entry.name}' could not be loaded.", str(exc)
        ) from exc


_store: ModelStore | None = None
_store_guard = threading.Lock()


def store() -> ModelStore:
    """The container's model store, configured from the environment on first use."""
    global _store
    with _store_guard:
        if _store is None:
            _store = ModelStore.from_env()
        return _store


def current_store() -> ModelStore | None:
    """The store if one exists yet (GET /health must not create or load anything)."""
    return _store


def reset() -> None:
    """Forget loaded models and re-read the environment on next use (tests, reconfiguration)."""
    global _store
    with _store_guard:
        _store = None
