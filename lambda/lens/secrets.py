"""Where the Gemini API key comes from, and reading it (cached).

Order: GOOGLE_API_KEY (or GEMINI_API_KEY) in the environment; else GOOGLE_API_KEY_PARAM,
the name (or ARN) of where the key is stored, read from the store GOOGLE_API_KEY_BACKEND
names: `ssm` (an SSM SecureString parameter) or `secretsmanager` (a Secrets Manager
secret). The deploy tool writes both variables, so the function reads exactly what the
deploy configured. Without GOOGLE_API_KEY_BACKEND (a hand-set environment) a Secrets
Manager ARN means Secrets Manager and anything else SSM. Values are read through
Powertools Parameters and cached for KEY_MAX_AGE seconds, so a rotated key is picked up
without a redeploy.

`key_status` is what GET /health reports: whether the key can actually be read (it
tries), and if not why, as a reason code. /health is unauthenticated, so a failed read is
remembered for FAILED_READ_MAX_AGE seconds instead of calling the store on every hit;
/analyze always tries again (a key stored with `scarab secrets set` works at once), and
a successful read there clears what /health remembered.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

from lens.errors import ApiError
from lens.observability import logger

KEY_MAX_AGE = 300  # seconds; Powertools' cache, per container
FAILED_READ_MAX_AGE = 30  # seconds /health remembers that the key could not be read
_JSON_KEYS = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "api_key", "apiKey", "key")

KeyKind = Literal["env", "ssm", "secretsmanager"]
StoreKind = Literal["ssm", "secretsmanager"]
BACKENDS: tuple[StoreKind, ...] = ("ssm", "secretsmanager")
# Why there is no usable key: nothing set, GOOGLE_API_KEY_BACKEND not a store we know,
# the store could not be read (missing, no permission, throttled), or it holds no key.
KeyProblem = Literal["not_set", "invalid_backend", "unreadable", "empty"]


@dataclass(frozen=True)
class KeySource:
    kind: KeyKind
    name: str | None  # parameter or secret, by name or ARN; None for the environment


def key_source() -> KeySource | None:
    """Where the key would come from (no network call); None when nothing usable is set."""
    if os.environ.get("GOOGLE_API_KEY", "").strip() or os.environ.get("GEMINI_API_KEY", "").strip():
        return KeySource("env", None)
    name = os.environ.get("GOOGLE_API_KEY_PARAM", "").strip()
    if not name:
        return None
    backend = _backend()
    if backend in BACKENDS:
        return KeySource("ssm" if backend == "ssm" else "secretsmanager", name)
    if backend:
        return None  # misconfigured: get_api_key says why
    if name.startswith("arn:") and ":secretsmanager:" in name:
        return KeySource("secretsmanager", name)
    return KeySource("ssm", name)


def _backend() -> str:
    return os.environ.get("GOOGLE_API_KEY_BACKEND", "").strip().lower()


_providers: dict[str, Any] = {}


def _provider(kind: StoreKind) -> Any:
    # Imported lazily: Parameters pulls in boto3, which a key from the env never needs.
    if kind not in _providers:
        from aws_lambda_powertools.utilities import parameters

        provider = (
            parameters.SecretsProvider() if kind == "secretsmanager" else parameters.SSMProvider()
        )
        _providers[kind] = provider
    return _providers[kind]


def read_stored(kind: StoreKind, name: str) -> str:
    """The value stored at `name` (SSM SecureString, decrypted, or Secrets Manager), as
    text, through the same cached providers as the Gemini key (KEY_MAX_AGE seconds).
    Raises whatever the store raises (missing, no permission, throttled)."""
    if kind == "ssm":
        value = _provider("ssm").get(name, decrypt=True, max_age=KEY_MAX_AGE)
    else:
        value = _provider("secretsmanager").get(name, max_age=KEY_MAX_AGE)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def _from_secret_string(value: str) -> str:
    """A secret holds the bare key, or a JSON object with the key under a usual name."""
    text = value.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return text
        if isinstance(data, dict):
            for name in _JSON_KEYS:
                if isinstance(data.get(name), str):
                    return str(data[name]).strip()
            strings = [v for v in data.values() if isinstance(v, str)]
            if len(strings) == 1:
                return strings[0].strip()
        return ""
    return text


@dataclass
class KeyNotConfigured(ApiError):
    """503 gemini_not_configured, with the reason code /health reports."""

    reason: KeyProblem = "not_set"


def not_configured(message: str, reason: KeyProblem) -> KeyNotConfigured:
    return KeyNotConfigured(503, "gemini_not_configured", message, reason=reason)


def get_api_key() -> str:
    """The Gemini API key; KeyNotConfigured (ApiError 503 gemini_not_configured) when
    there is none."""
    key = _read_api_key()
    _failed_reads.clear()  # /health must not go on saying the key is unreadable
    return key


def _read_api_key() -> str:
    source = key_source()
    if source is None and _backend() and _backend() not in BACKENDS:
        raise not_configured(
            "The analysis service is not configured: GOOGLE_API_KEY_BACKEND is "
            f"{_backend()[:40]!r}; it must be one of {', '.join(BACKENDS)}.",
            "invalid_backend",
        )
    if source is None:
        raise not_configured(
            "The analysis service is not configured: no Gemini API key is set "
            "(GOOGLE_API_KEY, or GOOGLE_API_KEY_PARAM and GOOGLE_API_KEY_BACKEND).",
            "not_set",
        )
    if source.kind == "env":
        return (os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY") or "").strip()
    try:
        value = read_stored(source.kind, source.name or "")
    except Exception as exc:  # missing parameter, no permission, throttling...
        logger.error(
            "gemini key lookup failed", extra={"source": source.kind, "error": type(exc).__name__}
        )
        raise not_configured(
            "The analysis service is not configured: the Gemini API key could not be read "
            "from its parameter store.",
            "unreadable",
        ) from None
    key = _from_secret_string(value)
    if not key:
        raise not_configured(
            "The analysis service is not configured: the stored Gemini API key is empty.",
            "empty",
        )
    return key


@dataclass(frozen=True)
class KeyStatus:
    """What /health says about the key: never its name or value."""

    configured: bool
    kind: KeyKind | None  # where it is (to be) read from
    reason: KeyProblem | None  # why it cannot be used; None when configured


# The clock failed reads are timed by (a name, so tests can move it).
_now = time.monotonic
# source -> (when the failed read is forgotten, what /health says until then)
_failed_reads: dict[KeySource, tuple[float, KeyStatus]] = {}


def key_status() -> KeyStatus:
    """Whether the key can be read now, by reading it (a cached key costs nothing; a
    failed read from a store is remembered for FAILED_READ_MAX_AGE seconds)."""
    source = key_source()
    kind = source.kind if source else None
    if source is not None:
        remembered = _failed_reads.get(source)
        if remembered is not None and _now() < remembered[0]:
            return remembered[1]
    try:
        get_api_key()
    except KeyNotConfigured as exc:
        status = KeyStatus(False, kind, exc.reason)
        if source is not None and source.kind != "env":
            _failed_reads[source] = (_now() + FAILED_READ_MAX_AGE, status)
        return status
    return KeyStatus(True, kind, None)


def reset_key_cache() -> None:
    """Forget cached keys, failed reads and clients (tests, or after changing the
    environment)."""
    _providers.clear()
    _failed_reads.clear()
