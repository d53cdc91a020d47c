"""Where the Gemini API key comes from, and reading it (cached).

Order: GOOGLE_API_KEY (or GEMINI_API_KEY) in the environment; else GOOGLE_API_KEY_PARAM,
the name (or ARN) of where the key is stored, read from the store GOOGLE_API_KEY_BACKEND
names: `ssm` (an SSM SecureString parameter) or `secretsmanager` (a Secrets Manager
secret). The deploy tool writes both variables, so the function reads exactly what the
deploy configured. Without GOOGLE_API_KEY_BACKEND (a hand-set environment) a Secrets
Manager ARN means Secrets Manager and anything else SSM. Values are read through
Powertools Parameters and cached for KEY_MAX_AGE seconds, so a rotated key is picked up
without a redeploy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Literal

from lens.errors import ApiError
from lens.observability import logger

KEY_MAX_AGE = 300  # seconds; Powertools' cache, per container
_JSON_KEYS = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "api_key", "apiKey", "key")

KeyKind = Literal["env", "ssm", "secretsmanager"]
StoreKind = Literal["ssm", "secretsmanager"]
BACKENDS: tuple[StoreKind, ...] = ("ssm", "secretsmanager")


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


def not_configured(message: str) -> ApiError:
    return ApiError(503, "gemini_not_configured", message)


def get_api_key() -> str:
    """The Gemini API key; ApiError 503 gemini_not_configured when there is none."""
    source = key_source()
    if source is None and _backend() and _backend() not in BACKENDS:
        raise not_configured(
            "The analysis service is not configured: GOOGLE_API_KEY_BACKEND is "
            f"{_backend()[:40]!r}; it must be one of {', '.join(BACKENDS)}."
        )
    if source is None:
        raise not_configured(
            "The analysis service is not configured: no Gemini API key is set "
            "(GOOGLE_API_KEY, or GOOGLE_API_KEY_PARAM and GOOGLE_API_KEY_BACKEND)."
        )
    if source.kind == "env":
        return (os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY") or "").strip()
    try:
        if source.kind == "ssm":
            value = _provider("ssm").get(source.name, decrypt=True, max_age=KEY_MAX_AGE)
        else:
            value = _provider("secretsmanager").get(source.name, max_age=KEY_MAX_AGE)
    except Exception as exc:  # missing parameter, no permission, throttling...
        logger.error(
            "gemini key lookup failed", extra={"source": source.kind, "error": type(exc).__name__}
        )
        raise not_configured(
            "The analysis service is not configured: the Gemini API key could not be read "
            "from its parameter store."
        ) from None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    key = _from_secret_string(value) if isinstance(value, str) else ""
    if not key:
        raise not_configured(
            "The analysis service is not configured: the stored Gemini API key is empty."
        )
    return key


def reset_key_cache() -> None:
    """Forget cached keys and clients (tests, or after changing the environment)."""
    _providers.clear()
