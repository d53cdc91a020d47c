"""The server's API-key check: what API Gateway's usage plan does for the Lambda path.

With SCARAB_API_KEYS_SECRET set, every route but /health and /ping (and CORS preflights,
which browsers send without a key) needs an `x-api-key` that is an enabled key of the ring
in that Secrets Manager secret (format: lens.server.keys). The secret is read through
Powertools' parameters utility and cached for SCARAB_API_KEYS_TTL_S seconds (default 60),
so a rotation or a revocation applies within that time without a restart. A missing or
refused key gets the answer API Gateway gives (403 {"message":"Forbidden"}); a secret that
cannot be read or is not a key ring is 503 `keys_unavailable` (never its text).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass

from lens.errors import ApiError
from lens.observability import logger
from lens.server.keys import KeyRing, KeyRingError, parse_keys

SECRET_ENV = "SCARAB_API_KEYS_SECRET"  # noqa: S105  (a variable name, not a secret)
TTL_ENV = "SCARAB_API_KEYS_TTL_S"
DEFAULT_TTL_S = 60
# Routes a caller reaches without a key (health checks: ECS's, SageMaker's, a balancer's).
OPEN_PATHS = frozenset({"/health", "/ping"})
KEY_HEADER = "x-api-key"

# API Gateway's INVALID_API_KEY answer as this project's API gives it (scarab serve:
# scarab.serve.responses; tests/server/test_auth.py checks the two agree).
FORBIDDEN_BODY = json.dumps({"message": "Forbidden"}, separators=(",", ":")).encode()
FORBIDDEN_HEADERS = {"Content-Type": "application/json", "x-amzn-ErrorType": "ForbiddenException"}


@dataclass(frozen=True)
class Verdict:
    """The key check's outcome: allowed, or refused (403), or the keys are unusable (503)."""

    allowed: bool
    error: ApiError | None = None  # set when the keys cannot be read


def secret_name() -> str | None:
    name = os.environ.get(SECRET_ENV, "").strip()
    return name or None


def ttl_seconds() -> int:
    raw = os.environ.get(TTL_ENV, "").strip()
    try:
        value = int(raw) if raw else DEFAULT_TTL_S
    except ValueError:
        logger.warning(
            "not a whole number of seconds; using the default", extra={"variable": TTL_ENV}
        )
        value = DEFAULT_TTL_S
    return max(value, 0)


def needs_key(method: str, path: str) -> bool:
    """Whether a request must carry a key (when keys are configured at all)."""
    return method.upper() != "OPTIONS" and path not in OPEN_PATHS


def _unavailable() -> ApiError:
    return ApiError(
        503,
        "keys_unavailable",
        "The server's API keys cannot be read right now, so no request is let through; "
        "try again shortly.",
    )


_parsed: tuple[str, KeyRing] | None = None
_guard = threading.Lock()


def _ring(name: str) -> KeyRing:
    """The key ring in secret `name` (cached by Powertools for ttl_seconds()); ApiError 503
    when it cannot be read or parsed."""
    global _parsed
    from aws_lambda_powertools.utilities import parameters

    ttl = ttl_seconds()
    try:
        value = parameters.get_secret(name, max_age=ttl, force_fetch=ttl == 0)
    except Exception as exc:  # GetParameterError, or botocore's for a missing region
        # The error's type and AWS error code only: never a value the secret may hold.
        logger.error(
            "API keys secret unreadable",
            extra={"secret": name, "error": type(exc).__name__, "code": _aws_code(exc)},
        )
        raise _unavailable() from None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    with _guard:
        if _parsed is not None and _parsed[0] == text:
            return _parsed[1]
    try:
        ring = parse_keys(text)
    except KeyRingError as exc:  # its message never holds the secret's text
        logger.error("API keys secret unusable", extra={"secret": name, "why": str(exc)})
        raise _unavailable() from None
    with _guard:
        _parsed = (text, ring)
    return ring


def _aws_code(exc: BaseException) -> str | None:
    """The AWS error code behind `exc` (Powertools wraps botocore's ClientError)."""
    cause = exc.__cause__ or exc.__context__
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def check(method: str, path: str, presented: str | None) -> Verdict:
    """The key check for one request (blocking: it may read the secret)."""
    name = secret_name()
    if name is None or not needs_key(method, path):
        return Verdict(allowed=True)
    try:
        ring = _ring(name)
    except ApiError as error:
        return Verdict(allowed=False, error=error)
    return Verdict(allowed=ring.accepts(presented))
