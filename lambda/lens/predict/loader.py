"""Lazy, once-per-container loading of ONNX artifacts (packaged or from S3).

An artifact comes from the package (artifacts/<path>) unless the registry entry or
SCARAB_MODEL_ARTIFACTS (JSON: {"model name": "s3://bucket/key"}) points at S3. S3
artifacts are downloaded once into SCARAB_MODEL_CACHE_DIR (default: a directory in
/tmp). Every artifact, wherever it came from, must match the registry's sha256
before onnxruntime sees it. Loaded sessions live as long as the container.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from lens.observability import NAMESPACE, logger
from lens.predict.registry import ARTIFACTS_DIR, ModelEntry

ARTIFACTS_ENV = "SCARAB_MODEL_ARTIFACTS"
CACHE_DIR_ENV = "SCARAB_MODEL_CACHE_DIR"
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "scarab-models"
# Far above any model here; refuses to pull something absurd into a 512 MB /tmp.
MAX_ARTIFACT_BYTES = 256 * 1024 * 1024


class ModelLoadError(Exception):
    """A model could not be made ready. `public` is safe to show a client; the rest is logged."""

    def __init__(self, model: str, public: str, detail: str = "") -> None:
        super().__init__(f"{model}: {detail or public}")
        self.model = model
        self.public = public
        self.detail = detail


@dataclass(frozen=True)
class LoadedModel:
    """An ONNX session ready to run, with the registry entry it was checked against."""

    entry: ModelEntry
    session: Any  # onnxruntime.InferenceSession (untyped)
    input_name: str
    probabilities_output: str
    source: str
    load_ms: float

    def probabilities(self, batch: Any) -> Any:
        """Class probabilities, shape (n, len(entry.labels)), for a float32 batch (n, k)."""
        (result,) = self.session.run([self.probabilities_output], {self.input_name: batch})
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


class ModelStore:
    """Loads each model at most once (thread-safe) and keeps it for the container's life."""

    def __init__(
        self,
        *,
        artifacts_dir: Path = ARTIFACTS_DIR,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        overrides: dict[str, str] | None = None,
        overrides_error: str | None = None,
    ) -> None:
        self.artifacts_dir = artifacts_dir
        self.cache_dir = cache_dir
        self.overrides = dict(overrides or {})
        self._overrides_error = overrides_error
        self._loaded: dict[str, LoadedModel] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @classmethod
    def from_env(cls) -> ModelStore:
        cache_dir = Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR)
        try:
            overrides = parse_overrides(os.environ.get(ARTIFACTS_ENV))
            error = None
        except ValueError as exc:
            overrides, error = {}, str(exc)
        return cls(cache_dir=cache_dir, overrides=overrides, overrides_error=error)

    def loaded_names(self) -> list[str]:
        return sorted(self._loaded)

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
            return entry.artifact.path
        return str(self.artifacts_dir / entry.artifact.path)

    def get(self, entry: ModelEntry) -> LoadedModel:
        """The loaded model, loading it first if this container has not yet."""
        loaded = self._loaded.get(entry.name)
        if loaded is not None:
            return loaded
        with self._guard:
            lock = self._locks.setdefault(entry.name, threading.Lock())
        with lock:  # one load per model even when requests race
            loaded = self._loaded.get(entry.name)
            if loaded is None:
                loaded = self._load(entry)
                self._loaded[entry.name] = loaded
        return loaded

    def _load(self, entry: ModelEntry) -> LoadedModel:
        started = time.perf_counter()
        location = self.location(entry)
        data = self._fetch_s3(entry, location) if location.startswith("s3://") else None
        if data is None:
            data = self._read_packaged(entry, Path(location))
        session = _session(entry, data)
        outputs = [o.name for o in session.get_outputs()]
        probabilities = "probabilities" if "probabilities" in outputs else outputs[-1]
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
        return LoadedModel(
            entry=entry,
            session=session,
            input_name=session.get_inputs()[0].name,
            probabilities_output=probabilities,
            source=source,
            load_ms=load_ms,
        )

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
                return data
            logger.warning(
                "cached artifact is corrupt; downloading again", extra={"model": entry.name}
            )
            cached.unlink(missing_ok=True)
        data = _download(entry, uri)
        _check_sha256(entry, data, uri)
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".part")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, cached)
        except OSError as exc:  # a read-only /tmp costs a download per load, nothing more
            logger.warning(
                "could not cache artifact", extra={"model": entry.name, "error": str(exc)}
            )
        return data


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


def _download(entry: ModelEntry, uri: str) -> bytes:
    # boto3 is only needed for S3 artifacts (the Lambda runtime ships it).
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    unavailable = f"Model '{entry.name}' could not be downloaded from its artifact store."
    try:
        bucket, key = parse_s3_uri(uri)
    except ValueError as exc:
        raise ModelLoadError(entry.name, unavailable, str(exc)) from exc
    try:
        response = boto3.client("s3").get_object(Bucket=bucket, Key=key)
        if int(response.get("ContentLength") or 0) > MAX_ARTIFACT_BYTES:
            raise ModelLoadError(entry.name, unavailable, f"{uri} exceeds {MAX_ARTIFACT_BYTES}")
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
