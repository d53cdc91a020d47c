"""Local CloudWatch metrics: what serve records per request, kept in memory.

Serve records the metrics AWS/Lambda and AWS/ApiGateway would publish for each request
(`record_invocation`, `record_api_request`) under the dimension sets those services use,
so an alarm defined on any of them finds its datapoints (`scarab.serve.alarms`). Only a
bounded window is kept: samples older than `window_s` are dropped, and each series holds
at most `max_per_series` samples (the oldest go first).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

LAMBDA_NAMESPACE = "AWS/Lambda"
API_NAMESPACE = "AWS/ApiGateway"
# Longest alarm window serve keeps: an alarm over more than this sees missing data.
DEFAULT_WINDOW_S = 3600.0
DEFAULT_MAX_PER_SERIES = 50_000

Dimensions = frozenset[tuple[str, str]]


def dimensions(values: Mapping[str, str]) -> Dimensions:
    """A dimension set as CloudWatch matches it: exactly these names and values."""
    return frozenset((str(k), str(v)) for k, v in values.items())


@dataclass(frozen=True)
class Invocation:
    """One Lambda invocation as serve ran it."""

    function: str  # FunctionName
    qualifier: str | None  # the alias or version the caller named (None: unqualified)
    executed_version: str  # the version that ran ("$LATEST" when unqualified)
    duration_ms: float
    error: bool  # a function error, a timeout or a crashed runtime
    throttled: bool = False


@dataclass(frozen=True)
class ApiRequest:
    """One request through the REST API stage."""

    api_name: str
    stage: str
    status: int
    latency_ms: float


class MetricStore:
    """Samples by (namespace, metric name, dimension set); thread-safe (the event loop
    writes, the alarm thread reads)."""

    def __init__(
        self,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        max_per_series: int = DEFAULT_MAX_PER_SERIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_s = window_s
        self.max_per_series = max_per_series
        self.clock = clock
        self._series: dict[tuple[str, str, Dimensions], deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def put(
        self,
        namespace: str,
        name: str,
        dims: Mapping[str, str],
        value: float,
        at: float | None = None,
    ) -> None:
        when = self.clock() if at is None else at
        key = (namespace, name, dimensions(dims))
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = deque(maxlen=self.max_per_series)
            series.append((when, float(value)))
            self._trim(series, when)

    def _trim(self, series: deque[tuple[float, float]], now: float) -> None:
        horizon = now - self.window_s
        while series and series[0][0] < horizon:
            series.popleft()

    def samples(
        self, namespace: str, name: str, dims: Dimensions, start: float, end: float
    ) -> list[tuple[float, float]]:
        """(timestamp, value) of the series with exactly `dims`, start <= t < end."""
        with self._lock:
            series = self._series.get((namespace, name, dims))
            if series is None:
                return []
            self._trim(series, self.clock())
            return [(t, v) for t, v in series if start <= t < end]

    def series_count(self) -> int:
        with self._lock:
            return len(self._series)

    def record_invocation(self, inv: Invocation, at: float | None = None) -> None:
        """Lambda's per-invocation metrics under the dimension sets Lambda publishes:
        FunctionName; FunctionName + Resource (`name:qualifier`) for a qualified call;
        plus ExecutedVersion when the qualifier is an alias."""
        when = self.clock() if at is None else at
        sets: list[dict[str, str]] = [{"FunctionName": inv.function}]
        if inv.qualifier:
            resource = {"FunctionName": inv.function, "Resource": f"{inv.function}:{inv.qualifier}"}
            sets.append(resource)
            if inv.qualifier != inv.executed_version:
                sets.append({**resource, "ExecutedVersion": inv.executed_version})
        for dims in sets:
            if inv.throttled:  # a throttled call is not an invocation
                self.put(LAMBDA_NAMESPACE, "Throttles", dims, 1.0, when)
                continue
            self.put(LAMBDA_NAMESPACE, "Invocations", dims, 1.0, when)
            self.put(LAMBDA_NAMESPACE, "Errors", dims, 1.0 if inv.error else 0.0, when)
            self.put(LAMBDA_NAMESPACE, "Throttles", dims, 0.0, when)
            self.put(LAMBDA_NAMESPACE, "Duration", dims, inv.duration_ms, when)

    def record_api_request(self, req: ApiRequest, at: float | None = None) -> None:
        """API Gateway's per-request metrics on ApiName, and on ApiName + Stage."""
        when = self.clock() if at is None else at
        for dims in ({"ApiName": req.api_name}, {"ApiName": req.api_name, "Stage": req.stage}):
            self.put(API_NAMESPACE, "Count", dims, 1.0, when)
            self.put(API_NAMESPACE, "5XXError", dims, 1.0 if req.status >= 500 else 0.0, when)
            self.put(API_NAMESPACE, "4XXError", dims, 1.0 if 400 <= req.status < 500 else 0.0, when)
            self.put(API_NAMESPACE, "Latency", dims, req.latency_ms, when)
