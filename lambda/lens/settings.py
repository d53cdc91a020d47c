"""Function settings read from the environment: model tiers, limits, origins, retries.

Every value has a documented default; the environment overrides it. Parsing happens on
first use (not at import), so a bad value becomes a clear 500 `invalid_configuration`
answer instead of an import crash. `get_settings()` caches; `reset_settings()` forgets.

Environment variables:
    SCARAB_MODELS          JSON object tier -> model id, merged over DEFAULT_MODELS.
    SCARAB_THINKING        JSON object tier -> thinking level name ("minimal", "low",
                           "medium", "high") or an integer token budget (older models).
    SCARAB_MAX_BODY_BYTES  request body limit (default 6 MiB: Lambda's synchronous
                           invocation payload limit, so API Gateway never sends more).
    SCARAB_MAX_IMAGE_BYTES decoded image limit (default 6 MiB).
    SCARAB_MAX_PIXELS      decompression-bomb guard (default 50 megapixels: a 50 MP phone
                           sensor passes, a crafted 20000x20000 PNG does not).
    SCARAB_MAX_SIDE        longest side sent to Gemini (default 1024 px, see below).
    SCARAB_JPEG_QUALITY    quality of re-encoded JPEGs (default 85).
    SCARAB_IMAGE_MEMORY_PERCENT  share of the function's memory one image may take while
                           it is decoded and shrunk (default 40); a bigger one is a 413.
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE  the function's memory in MB, set by Lambda (default 512).
    SCARAB_MAX_ATTEMPTS    Gemini attempts per request, first one included (default 4).
    SCARAB_RETRY_BASE_MS   first backoff step before jitter (default 500 ms).
    SCARAB_RETRY_MAX_MS    largest single backoff (default 8000 ms).
    SCARAB_DEADLINE_MARGIN_MS  time kept back before the Lambda deadline to answer 504
                           ourselves (default 1500 ms).
    ALLOWED_ORIGINS        comma list of browser origins allowed by CORS; "*" allows any
                           (default "*": the API key, not CORS, is what secures the API).
    SCARAB_CACHE_TTL_S     seconds an answer of /analyze, /predict or /forecast is reused
                           (default 0: no cache; `scarab deploy` sets [cache] ttl_seconds).
    SCARAB_CACHE_TABLE     the stage's shared cache table (unset: in-process cache only).
    SCARAB_GEMINI_PRICES   JSON object model id -> {"input": USD, "output": USD} per 1M
                           tokens, merged over DEFAULT_GEMINI_PRICES (GET /stats' estimate).

Why 1024 px: Gemini 2.x cuts images into 768x768 tiles (258 tokens each), so a 4:3
photo at 1024x768 costs two tiles; Gemini 3 scales every image to a fixed token budget
(about 1120 tokens at high media resolution), which about one megapixel already fills.
More pixels than that cost upload time, not detail the model sees. 1024 is also where
a 12 MP photo (4032x3024) decodes at exactly 1/4 scale (1008x756) through libjpeg's DCT
scaling, with no resampling at all. Raise SCARAB_MAX_SIDE for photos of small text.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, cast, get_args

from lens.errors import ApiError

# The speed tiers /analyze accepts, spelled once for the function (schema, error messages,
# settings). The scarab CLI cannot import lens, so it has its own copy (scarab.speeds);
# tests/deploy/test_tidy.py checks it, the web client's options and the OpenAPI enum agree.
Tier = Literal["regular", "fast", "super-fast"]
TIERS: tuple[Tier, ...] = get_args(Tier)
DEFAULT_TIER: Tier = "fast"

# Speed tier -> model id. There is no GA Gemini 3.x Pro yet and 2.5 Pro/Flash are being
# retired, so "regular" uses the only Gemini 3 Pro (a preview); revisit when a GA Pro ships.
DEFAULT_MODELS: dict[str, str] = {
    "regular": "gemini-3.1-pro-preview",
    "fast": "gemini-3.5-flash",
    "super-fast": "gemini-3.5-flash-lite",
}

# Gemini 3 models take a thinking *level*; sending a level and a budget together is a 400.
# An integer here means a token budget, for older models configured via SCARAB_MODELS.
DEFAULT_THINKING: dict[str, str | int] = {
    "regular": "high",
    "fast": "low",
    "super-fast": "minimal",
}
THINKING_LEVELS = ("minimal", "low", "medium", "high")

# USD per 1M tokens (input, output; thinking is billed as output) for GET /stats'
# *estimated* cost: Google's pay-as-you-go standard rates for prompts up to 200k tokens
# as published on https://ai.google.dev/gemini-api/docs/pricing (read 2026-12 via
# third-party copies of that page; batch, caching and long-prompt rates differ). No
# published rate was found for gemini-3.5-flash-lite, so it has none here: its tokens
# are counted and /stats lists it under unpriced_models. Set SCARAB_GEMINI_PRICES to
# correct or add rates; the bill itself is in Google Cloud Billing.
DEFAULT_GEMINI_PRICES: dict[str, tuple[float, float]] = {
    "gemini-3.1-pro-preview": (2.00, 12.00),
    "gemini-3.5-flash": (1.50, 9.00),
    "gemini-3.1-flash-lite-preview": (0.25, 1.50),
    "gemini-3-flash-preview": (0.50, 3.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
}
GEMINI_PRICES_ENV = "SCARAB_GEMINI_PRICES"

MIB = 1024 * 1024
# The response cache's variables (contract with scarab.deploy.models, which sets them).
CACHE_TTL_ENV = "SCARAB_CACHE_TTL_S"
CACHE_TABLE_ENV = "SCARAB_CACHE_TABLE"
MAX_CACHE_TTL_S = 86_400
# Presigned uploads and asynchronous jobs (contract with scarab.deploy.models, which
# sets them, and scarab serve). Unset bucket/table: the routes answer 503.
UPLOADS_BUCKET_ENV = "SCARAB_UPLOADS_BUCKET"
UPLOADS_MAX_BYTES_ENV = "SCARAB_UPLOADS_MAX_BYTES"
DEFAULT_UPLOADS_MAX_MB = 50
JOBS_TABLE_ENV = "SCARAB_JOBS_TABLE"
JOBS_TTL_ENV = "SCARAB_JOBS_TTL_S"
DEFAULT_JOBS_TTL_S = 86_400
# Every upload object's key starts with this (the role's S3 grants, the lifecycle rule).
UPLOADS_PREFIX = "uploads/"
# The jobs table's partition key and TTL attribute (Powertools' idempotency records
# share the table: its DynamoDBPersistenceLayer defaults are key "id", TTL "expiration").
JOBS_KEY_ATTRIBUTE = "id"
JOBS_TTL_ATTRIBUTE = "expiration"
# Lambda sets AWS_LAMBDA_FUNCTION_MEMORY_SIZE; 512 is what `scarab deploy` configures.
DEFAULT_FUNCTION_MEMORY_MB = 512
# The interpreter with lens and the digits model loaded holds about 90 MB; 40% more for
# one image keeps a 512 MB function under 60% of its memory (see bench/bench_memory.py).
DEFAULT_IMAGE_MEMORY_PERCENT = 40


def memory_budget(memory_mb: int, percent: int) -> int:
    """Bytes one image may occupy while decoded: `percent` of `memory_mb` megabytes."""
    return memory_mb * MIB * percent // 100


@dataclass(frozen=True)
class Settings:
    """Everything the function reads from its environment (no secrets)."""

    models: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_MODELS))
    thinking: dict[str, str | int] = field(default_factory=lambda: dict(DEFAULT_THINKING))
    max_body_bytes: int = 6 * MIB
    max_image_bytes: int = 6 * MIB
    max_pixels: int = 50_000_000
    max_side: int = 1024
    jpeg_quality: int = 85
    max_attempts: int = 4
    retry_base_ms: int = 500
    retry_max_ms: int = 8000
    deadline_margin_ms: int = 1500
    allowed_origins: tuple[str, ...] = ("*",)
    function_memory_mb: int = DEFAULT_FUNCTION_MEMORY_MB
    image_memory_percent: int = DEFAULT_IMAGE_MEMORY_PERCENT
    cache_ttl_s: int = 0
    cache_table: str = ""
    uploads_bucket: str = ""
    uploads_max_bytes: int = DEFAULT_UPLOADS_MAX_MB * MIB
    jobs_table: str = ""
    jobs_ttl_s: int = DEFAULT_JOBS_TTL_S
    gemini_prices: dict[str, tuple[float, float]] = field(
        default_factory=lambda: dict(DEFAULT_GEMINI_PRICES)
    )

    @property
    def image_memory_bytes(self) -> int:
        """The decoding budget for one image (see lens.images.decode_cost)."""
        return memory_budget(self.function_memory_mb, self.image_memory_percent)

    def model_for(self, tier: str) -> str:
        return self.models[tier]


def _invalid(name: str, why: str) -> ApiError:
    return ApiError(500, "invalid_configuration", f"The function setting {name} {why}.")


def _int(env: dict[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(name, "must be a whole number") from None
    if not minimum <= value <= maximum:
        raise _invalid(name, f"must be between {minimum} and {maximum}")
    return value


def _tier_map(env: dict[str, str], name: str) -> dict[str, object]:
    raw = env.get(name, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise _invalid(name, "is not valid JSON") from None
    if not isinstance(value, dict):
        raise _invalid(name, "must be a JSON object of speed tier to value")
    unknown = sorted(set(value) - set(TIERS))
    if unknown:
        raise _invalid(name, f"names unknown speed tiers ({', '.join(map(str, unknown))})")
    return value


def _models(env: dict[str, str]) -> dict[str, str]:
    models = dict(DEFAULT_MODELS)
    for tier, model in _tier_map(env, "SCARAB_MODELS").items():
        if not isinstance(model, str) or not model.strip():
            raise _invalid("SCARAB_MODELS", f"needs a model id string for {tier}")
        models[tier] = model.strip()
    return models


def _thinking(env: dict[str, str]) -> dict[str, str | int]:
    thinking = dict(DEFAULT_THINKING)
    for tier, value in _tier_map(env, "SCARAB_THINKING").items():
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _invalid("SCARAB_THINKING", f"needs a level name or a token budget for {tier}")
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in THINKING_LEVELS:
                raise _invalid("SCARAB_THINKING", f"has an unknown thinking level for {tier}")
        thinking[tier] = value
    return thinking


def _prices(env: dict[str, str]) -> dict[str, tuple[float, float]]:
    prices = dict(DEFAULT_GEMINI_PRICES)
    raw = env.get(GEMINI_PRICES_ENV, "").strip()
    if not raw:
        return prices
    try:
        value = json.loads(raw)
    except ValueError:
        raise _invalid(GEMINI_PRICES_ENV, "is not valid JSON") from None
    if not isinstance(value, dict):
        raise _invalid(GEMINI_PRICES_ENV, "must be a JSON object of model id to prices")
    for model, price in value.items():
        rates = [price.get(k) for k in ("input", "output")] if isinstance(price, dict) else []
        if len(rates) != 2 or not all(
            isinstance(r, int | float) and not isinstance(r, bool) and 0 <= r < 1e6 for r in rates
        ):
            raise _invalid(
                GEMINI_PRICES_ENV,
                f'needs {{"input": USD, "output": USD}} per 1M tokens for {str(model)[:64]}',
            )
        prices[str(model)] = (float(cast(float, rates[0])), float(cast(float, rates[1])))
    return prices


def _origins(env: dict[str, str]) -> tuple[str, ...]:
    raw = env.get("ALLOWED_ORIGINS")
    if raw is None:
        return ("*",)
    return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Parse settings from `env` (default: os.environ); raise ApiError 500 when invalid."""
    env = dict(os.environ if env is None else env)
    return Settings(
        models=_models(env),
        thinking=_thinking(env),
        max_body_bytes=_int(env, "SCARAB_MAX_BODY_BYTES", 6 * MIB, 1024, 1024 * MIB),
        max_image_bytes=_int(env, "SCARAB_MAX_IMAGE_BYTES", 6 * MIB, 1024, 1024 * MIB),
        max_pixels=_int(env, "SCARAB_MAX_PIXELS", 50_000_000, 1, 1_000_000_000),
        max_side=_int(env, "SCARAB_MAX_SIDE", 1024, 64, 16384),
        jpeg_quality=_int(env, "SCARAB_JPEG_QUALITY", 85, 30, 95),
        max_attempts=_int(env, "SCARAB_MAX_ATTEMPTS", 4, 1, 10),
        retry_base_ms=_int(env, "SCARAB_RETRY_BASE_MS", 500, 0, 60_000),
        retry_max_ms=_int(env, "SCARAB_RETRY_MAX_MS", 8000, 0, 120_000),
        deadline_margin_ms=_int(env, "SCARAB_DEADLINE_MARGIN_MS", 1500, 0, 60_000),
        allowed_origins=_origins(env),
        function_memory_mb=_int(
            env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", DEFAULT_FUNCTION_MEMORY_MB, 128, 10240
        ),
        image_memory_percent=_int(
            env, "SCARAB_IMAGE_MEMORY_PERCENT", DEFAULT_IMAGE_MEMORY_PERCENT, 5, 90
        ),
        cache_ttl_s=_int(env, CACHE_TTL_ENV, 0, 0, MAX_CACHE_TTL_S),
        cache_table=env.get(CACHE_TABLE_ENV, "").strip(),
        uploads_bucket=env.get(UPLOADS_BUCKET_ENV, "").strip(),
        uploads_max_bytes=_int(
            env, UPLOADS_MAX_BYTES_ENV, DEFAULT_UPLOADS_MAX_MB * MIB, 1, 5000 * MIB
        ),
        jobs_table=env.get(JOBS_TABLE_ENV, "").strip(),
        jobs_ttl_s=_int(env, JOBS_TTL_ENV, DEFAULT_JOBS_TTL_S, 60, 720 * 3600),
        gemini_prices=_prices(env),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (parsed once; environment changes need reset_settings())."""
    return load_settings()


def reset_settings() -> None:
    """Forget cached settings so the next get_settings() re-reads the environment."""
    get_settings.cache_clear()
