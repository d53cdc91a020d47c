"""The response cache of /analyze, /predict/{model_id} and /forecast/{model_id}.

Two levels: an in-process LRU (lens.cache.memory) in front of the stage's DynamoDB table
(lens.cache.shared), shared by every container. A route computes its key (lens.cache.keys)
and calls `cached_json(key, compute)`: a live entry answers without `compute` running; a
miss runs it and stores its answer in both levels. `compute` raising (an ApiError, any
failure) stores nothing: errors are never cached.

Each answer of such a route says where it came from in `X-Cache`: `hit`, `miss`, or
`bypass` when the request carried `Cache-Control: no-cache` or `max-age=0` (the cache is
not read; the fresh answer is stored) or `no-store` (not read, not stored). The header is set by
`header_middleware` (installed by lens.app on every resolver); no header means the
cache is off (SCARAB_CACHE_TTL_S unset or 0) or the answer was an error.

Settings (lens.settings): SCARAB_CACHE_TTL_S seconds an answer is reused (0: off, the
default outside a stage; `scarab deploy` sets `[cache] ttl_seconds`, 300 by default) and
SCARAB_CACHE_TABLE, the shared table (unset: in-process only).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.metrics import MetricUnit

from lens.cache.memory import Clock, MemoryCache
from lens.cache.shared import SharedCache
from lens.intake import header
from lens.observability import logger, metrics
from lens.settings import get_settings

CacheState = Literal["hit", "miss", "bypass"]
HEADER = "X-Cache"


@dataclass
class RequestCache:
    """What this request asked of the cache, and what the cache did (one per request)."""

    bypass: bool = False  # Cache-Control: no-cache (or no-store): do not read
    no_store: bool = False  # Cache-Control: no-store: do not write either
    state: CacheState | None = None


_request: ContextVar[RequestCache | None] = ContextVar("lens_cache_request", default=None)


def directives(cache_control: str) -> RequestCache:
    """A request's Cache-Control as what the cache does: no-cache and max-age=0 (no
    cached answer is fresh enough; what a browser's reload sends) bypass it, no-store
    neither reads nor writes it. Directive names are case-insensitive."""
    tokens: dict[str, str] = {}
    for part in cache_control.split(","):
        name, _, value = part.partition("=")
        tokens[name.strip().lower()] = value.strip().strip('"')
    no_store = "no-store" in tokens
    age = tokens.get("max-age", "")
    stale = age.isdigit() and int(age) == 0
    return RequestCache(bypass=no_store or stale or "no-cache" in tokens, no_store=no_store)


class ResponseCache:
    """The two levels with one TTL: `shared` None keeps answers in this process only."""

    def __init__(
        self,
        ttl_s: int,
        shared: SharedCache | None = None,
        memory: MemoryCache | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.memory = memory or MemoryCache(clock=clock)
        self.shared = shared

    def fetch(self, key: str) -> str | None:
        """The live value under `key`: this process's first, then the table's (kept here
        until the table item expires)."""
        found = self.memory.get(key)
        if found is not None:
            return found[0]
        if self.shared is None:
            return None
        got = self.shared.get(key)
        if got is None:
            return None
        value, expires_at = got
        self.memory.put(key, value, expires_at)
        return value

    def store(self, key: str, value: str) -> None:
        expires_at = self.clock() + self.ttl_s
        self.memory.put(key, value, expires_at)
        if self.shared is not None:
            self.shared.put(key, value, expires_at)


_built: tuple[tuple[int, str], ResponseCache | None] | None = None
_clock: Clock | None = None
_lock = threading.Lock()


def get_cache() -> ResponseCache | None:
    """The process's cache for the current settings (None: the cache is off)."""
    global _built
    settings = get_settings()
    wanted = (settings.cache_ttl_s, settings.cache_table)
    with _lock:
        if _built is None or _built[0] != wanted:
            cache = None
            if settings.cache_ttl_s > 0:
                clock = _clock or time.time
                table = SharedCache(settings.cache_table, clock) if settings.cache_table else None
                cache = ResponseCache(settings.cache_ttl_s, table, clock=clock)
            _built = (wanted, cache)
        return _built[1]


def drop_clients() -> None:
    """Forget the shared table's client (and its connection pool); the next request
    makes a new one. The answers kept in memory stay."""
    with _lock:
        cache = _built[1] if _built is not None else None
        if cache is not None and cache.shared is not None:
            cache.shared.drop_client()


def reset_cache(*, clock: Clock | None = None) -> None:
    """Forget the cache and its entries; tests pass a clock (epoch seconds) to step past
    the TTL."""
    global _built, _clock
    with _lock:
        _built = None
        _clock = clock


def state() -> CacheState | None:
    """What the cache did for the current request (None: nothing cached was involved)."""
    request = _request.get()
    return request.state if request is not None else None


def _mark(request: RequestCache | None, what: CacheState) -> None:
    if request is not None:
        request.state = what
    name = {"hit": "CacheHits", "miss": "CacheMisses", "bypass": "CacheBypasses"}[what]
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def _encode(value: dict[str, Any]) -> str | None:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):  # not plain JSON: answered, just not cached
        logger.warning("answer not cached: not plain JSON")
        return None


def _decoded(text: str, usable: Callable[[dict[str, Any]], bool] | None) -> dict[str, Any] | None:
    """A cached value as the answer it holds; None (logged, counted as CacheErrors) for an
    item that is not JSON, not an object or not what `usable` accepts: a corrupt or
    foreign item in the table is a miss, never a 500."""
    try:
        value = json.loads(text)
        ok = isinstance(value, dict) and (usable is None or usable(value))
    except Exception:  # ValueError, or `usable` meeting a value of the wrong shape
        ok = False
    if not ok:
        logger.warning("cached answer unusable; answering as a miss")
        metrics.add_metric(name="CacheErrors", unit=MetricUnit.Count, value=1)
        return None
    answer: dict[str, Any] = value
    return answer


def cached_json(
    key: str,
    compute: Callable[[], dict[str, Any]],
    usable: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """The answer under `key`, from the cache when live (and `usable`, if given, accepts
    it), else `compute()` (stored)."""
    cache = get_cache()
    if cache is None:
        return compute()
    request = _request.get()
    if request is not None and request.bypass:
        value = compute()
        _mark(request, "bypass")
        if not request.no_store and (text := _encode(value)) is not None:
            cache.store(key, text)
        return value
    hit = cache.fetch(key)
    answer = _decoded(hit, usable) if hit is not None else None
    if answer is not None:
        _mark(request, "hit")
        return answer
    value = compute()  # raising stores nothing
    _mark(request, "miss")
    if (text := _encode(value)) is not None:
        cache.store(key, text)
    return value


def recall(key: str) -> dict[str, Any] | None:
    """A value kept in this process's memory only (`remember`), or None (also when the
    cache is off)."""
    cache = get_cache()
    found = cache.memory.get(key) if cache is not None else None
    if found is None:
        return None
    value: dict[str, Any] = json.loads(found[0])
    return value


def remember(key: str, value: dict[str, Any]) -> None:
    """Keep `value` in this process's memory for the TTL (a fact about this process's
    own work, e.g. what an upload prepares to; never written to the table)."""
    cache = get_cache()
    if cache is not None and (text := _encode(value)) is not None:
        cache.memory.put(key, text, cache.clock() + cache.ttl_s)


def peek(key: str, usable: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any] | None:
    """The answer under `key` when this process's memory has it live (and `usable`, if
    given, accepts it) and the request does not bypass the cache (marked a hit); else
    None, and nothing is marked."""
    request = _request.get()
    if request is not None and request.bypass:
        return None
    cache = get_cache()
    live = cache.memory.get(key) if cache is not None else None
    found = _decoded(live[0], usable) if live is not None else None
    if found is not None:
        _mark(request, "hit")
    return found


def header_middleware(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[str]:
    """Reads the request's Cache-Control, and says in X-Cache what the cache did."""
    token = _request.set(directives(header(app.current_event.raw_event, "cache-control")))
    try:
        response = next_middleware(app)
        done = state()
        if done is not None:
            response.headers[HEADER] = done
        return response
    finally:
        _request.reset(token)
