"""Asking Gemini for an analysis: one lazy client, our own retry loop, the Lambda deadline.

- google-genai is imported and the Client built on first use (cold import stays cheap; a
  missing key is a 503 at call time). One Client per process and key: a collected Client
  closes its HTTP transport, so it lives in a module global.
- The SDK's own retries are off; this loop retries 429/500/502/503/504, timeouts and
  connection failures with exponential backoff and full jitter, honours Retry-After, and
  never sleeps or waits past the deadline: each attempt's timeout is the time left minus
  a margin, so the function still answers 504 itself.
- `response.parsed` silently becomes None on bad JSON, so the text is validated here,
  after checking the finish reason. Output failing the schema is retried once.
"""

from __future__ import annotations

import os
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from lens.errors import ApiError
from lens.images import PreparedImage
from lens.observability import logger
from lens.prompt import SYSTEM_INSTRUCTION, user_prompt
from lens.schema import Analysis, Usage
from lens.secrets import get_api_key
from lens.settings import Settings

if TYPE_CHECKING:
    from google.genai import Client

API_VERSION = "v1beta"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MIN_ATTEMPT_MS = 300  # an attempt with less time than this cannot succeed; answer instead
_BLOCKED_FINISH = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
        "LANGUAGE",
    }
)


@dataclass(frozen=True)
class GeminiResult:
    analysis: Analysis
    model: str
    usage: Usage
    attempts: int


class _BadOutput(Exception):
    """The model answered, but not with a valid analysis (worth one more try)."""


_client: tuple[str, str | None, Client] | None = None
_ssl_context: ssl.SSLContext | None = None


def _transport_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(timeout, transport) exception types of whichever httpx the SDK runs on.

    google-genai works with httpx or its drop-in fork httpx2 (distinct import names).
    """
    import importlib

    timeouts: list[type[Exception]] = []
    transports: list[type[Exception]] = []
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transports.append(module.TransportError)
    return tuple(timeouts), tuple(transports)


def get_client(api_key: str) -> Client:
    """The process's Client for this key and base URL (rebuilt when either changes)."""
    global _client
    base_url = os.environ.get("GOOGLE_GEMINI_BASE_URL") or None
    if _client is not None and _client[0] == api_key and _client[1] == base_url:
        return _client[2]
    client = _build_client(api_key, base_url)
    _client = (api_key, base_url, client)
    return client


def _tls_context() -> ssl.SSLContext:
    """The TLS settings of every Client this process builds: the SDK's own default
    (certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR), loaded once. Loading the CA bundle
    is most of what building a Client costs (twice ~50 ms: the HTTP and the websocket
    transport), which a new transport after a SnapStart restore need not pay again; the
    context holds settings and CAs, no connection."""
    global _ssl_context
    if _ssl_context is None:
        import certifi

        _ssl_context = ssl.create_default_context(
            cafile=os.environ.get("SSL_CERT_FILE", certifi.where()),
            capath=os.environ.get("SSL_CERT_DIR"),
        )
    return _ssl_context


def _build_client(api_key: str, base_url: str | None) -> Client:
    from google import genai
    from google.genai import types

    tls = _tls_context()
    return genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(
            base_url=base_url,
            api_version=API_VERSION,
            retry_options=types.HttpRetryOptions(attempts=1),  # the loop below retries
            # httpx takes the context as `verify`, the websocket transport as `ssl`.
            client_args={"verify": tls},
            async_client_args={"verify": tls, "ssl": tls},
        ),
    )


def current_client() -> Client | None:
    """The process's Client if one was built (nothing is built here)."""
    return _client[2] if _client is not None else None


def renew_client() -> None:
    """Replace the process's Client (if any) by a new one for the same key and base URL:
    a new HTTP transport, with none of the old one's pooled connections (after a
    SnapStart restore they belong to the snapshot, shared by every restored copy)."""
    global _client
    if _client is not None:
        api_key, base_url, _old = _client
        _client = (api_key, base_url, _build_client(api_key, base_url))


def reset_client() -> None:
    global _client
    _client = None


def deadline_error() -> ApiError:
    return ApiError(
        504,
        "deadline_exceeded",
        "The analysis did not finish within the function's time limit; retry, "
        "or choose a faster speed.",
    )


def _thinking_config(value: str | int) -> Any:
    from google.genai import types

    if isinstance(value, int):
        return types.ThinkingConfig(thinking_budget=value)
    # Gemini 3 takes a level; a level and a budget together are rejected with a 400.
    return types.ThinkingConfig(thinking_level=types.ThinkingLevel(value.upper()))


def _retry_after_seconds(exc: Any) -> float | None:
    """Retry-After header, else google.rpc.RetryInfo.retryDelay, in seconds."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        raw = headers.get("retry-after")
        if raw:
            try:
                return max(0.0, float(raw))
            except ValueError:
                pass
    details = getattr(exc, "details", None)
    error = details.get("error") if isinstance(details, dict) else None
    for item in (error or {}).get("details") or []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                pass
    return None


def _upstream_error(status: int, model: str, retry_after: float | None) -> ApiError:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None else {}
    if status == 429:
        return ApiError(
            503,
            "upstream_quota_exceeded",
            "The model service's quota is exhausted right now; retry a little later.",
            headers,
        )
    if status == 503:
        return ApiError(
            503,
            "upstream_unavailable",
            "The model service is overloaded or unavailable right now; retry a little later.",
            headers,
        )
    if status in (401, 403):
        return ApiError(
            502,
            "upstream_auth_failed",
            "The model service rejected the function's API key; the operator must update it.",
        )
    if status == 404:
        return ApiError(
            502,
            "upstream_model_not_found",
            f"The model service does not know the configured model {model}.",
        )
    if 400 <= status < 500:
        return ApiError(502, "upstream_rejected", "The model service rejected the request.")
    return ApiError(502, "upstream_error", "The model service failed to answer; retry later.")


def _count(value: int | None) -> int:
    return int(value or 0)


def _add_usage(total: Usage, response: Any) -> Usage:
    meta = getattr(response, "usage_metadata", None)
    if meta is None:
        return total
    return Usage(
        input_tokens=total.input_tokens + _count(meta.prompt_token_count),
        output_tokens=total.output_tokens + _count(meta.candidates_token_count),
        thinking_tokens=total.thinking_tokens + _count(meta.thoughts_token_count),
        total_tokens=total.total_tokens + _count(meta.total_token_count),
    )


def parse_response(response: Any) -> Analysis:
    """The validated analysis; ApiError 422 when blocked, _BadOutput when unusable."""
    candidates = response.candidates or []
    if not candidates:
        feedback = getattr(response, "prompt_feedback", None)
        reason = getattr(feedback, "block_reason", None)
        if reason is not None:
            raise _blocked(str(getattr(reason, "value", reason)))
        raise _BadOutput("no candidates")
    finish_raw = candidates[0].finish_reason
    finish = str(getattr(finish_raw, "value", finish_raw or "STOP"))
    if finish in _BLOCKED_FINISH:
        raise _blocked(finish)
    if finish not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        raise _BadOutput(f"finish reason {finish}")
    text = response.text
    if not text:
        raise _BadOutput("empty text")
    try:
        return Analysis.model_validate_json(text)
    except ValidationError:
        raise _BadOutput("output does not match the schema") from None


def _invalid_output() -> ApiError:
    return ApiError(
        502,
        "invalid_model_output",
        "The model's answer did not match the analysis format, twice; retry later.",
    )


def _blocked(reason: str) -> ApiError:
    return ApiError(
        422,
        "content_blocked",
        f"The model declined to analyze this image (reason: {reason}); try another photo.",
    )


def analyze_with_gemini(
    image: PreparedImage,
    *,
    tier: str,
    image_type: str,
    settings: Settings,
    remaining_ms: Callable[[], float],
    sleep: Callable[[float], None] = time.sleep,
) -> GeminiResult:
    """Ask the tier's model for an Analysis of `image` within the time `remaining_ms` reports."""
    api_key = get_api_key()
    client = get_client(api_key)
    from google.genai import errors, types

    timeout_errors, transport_errors = _transport_errors()

    model = settings.model_for(tier)
    contents: list[Any] = [
        types.Part.from_bytes(data=image.data, mime_type=image.mime_type),
        user_prompt(image_type),
    ]
    usage = Usage(input_tokens=0, output_tokens=0, thinking_tokens=0, total_tokens=0)
    output_retry_used = False
    attempt = 0
    while True:
        attempt += 1
        budget_ms = remaining_ms() - settings.deadline_margin_ms
        if budget_ms < MIN_ATTEMPT_MS:
            raise deadline_error()
        config = types.GenerateContentConfig(
            system_instruction=SYSTEM_INSTRUCTION,
            # temperature 0 as specified; reproducible readings matter more here than variety.
            temperature=0,
            response_mime_type="application/json",
            response_schema=Analysis,
            thinking_config=_thinking_config(settings.thinking[tier]),
            http_options=types.HttpOptions(
                timeout=int(budget_ms), retry_options=types.HttpRetryOptions(attempts=1)
            ),
        )
        started = time.perf_counter()
        failure: ApiError
        retry_after: float | None = None
        try:
            response = client.models.generate_content(model=model, contents=contents, config=config)
        except errors.APIError as exc:
            status = int(exc.code or 0)
            retry_after = _retry_after_seconds(exc)
            failure = _upstream_error(status, model, retry_after)
            logger.warning(
                "gemini error", extra={"status": status, "attempt": attempt, "model": model}
            )
            if status not in RETRYABLE_STATUS:
                raise failure from None
        except (ValidationError, errors.UnknownApiResponseError):
            # The SDK could not even read the answer: as bad as invalid output.
            logger.warning("gemini answer unreadable", extra={"attempt": attempt})
            if output_retry_used:
                raise _invalid_output() from None
            output_retry_used = True
            continue
        except timeout_errors:
            logger.warning(
                "gemini timeout",
                extra={
                    "attempt": attempt,
                    "waited_ms": round(1000 * (time.perf_counter() - started)),
                },
            )
            failure = deadline_error()
        except transport_errors as exc:
            logger.warning(
                "gemini unreachable", extra={"attempt": attempt, "error": type(exc).__name__}
            )
            failure = ApiError(
                502, "upstream_unreachable", "The model service could not be reached; retry later."
            )
        else:
            usage = _add_usage(usage, response)
            try:
                analysis = parse_response(response)
            except _BadOutput as bad:
                logger.warning(
                    "gemini output unusable", extra={"why": str(bad), "attempt": attempt}
                )
                if output_retry_used:
                    raise _invalid_output() from None
                output_retry_used = True
                continue
            return GeminiResult(analysis=analysis, model=model, usage=usage, attempts=attempt)
        # A retryable failure: back off (with jitter) if attempts and time allow.
        if attempt >= settings.max_attempts:
            raise failure
        step = min(settings.retry_max_ms, settings.retry_base_ms * 2 ** (attempt - 1))
        delay_ms = random.uniform(0, step)
        if retry_after is not None:
            delay_ms = max(delay_ms, retry_after * 1000)
        if remaining_ms() - settings.deadline_margin_ms - delay_ms < MIN_ATTEMPT_MS:
            raise failure
        sleep(delay_ms / 1000)
