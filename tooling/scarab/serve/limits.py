"""Usage plan throttling (token bucket) and quotas, counted per API key and plan.

Settings come from the current snapshot on every call, so a plan change made with
the CLI applies to the next request; counters survive snapshot refreshes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from scarab.serve.snapshot import Quota, Throttle, UsagePlan


class Verdict(Enum):
    OK = "ok"
    THROTTLED = "THROTTLED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


@dataclass
class TokenBucket:
    """`burst` tokens at most, refilled at `rate` per second; a request takes one."""

    rate: float
    burst: int
    tokens: float
    stamp: float

    @classmethod
    def full(cls, throttle: Throttle, now: float) -> TokenBucket:
        capacity = max(throttle.burst, 1)
        return cls(rate=throttle.rate, burst=capacity, tokens=float(capacity), stamp=now)

    def retune(self, throttle: Throttle) -> None:
        self.rate = throttle.rate
        self.burst = max(throttle.burst, 1)
        self.tokens = min(self.tokens, float(self.burst))

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self.stamp)
        self.stamp = now
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def period_start(period: str, now: datetime) -> datetime:
    """Start (UTC) of the quota period containing `now`."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "WEEK":
        return day - timedelta(days=day.weekday())
    if period == "MONTH":
        return day.replace(day=1)
    return day


class Limiter:
    """Throttle and quota state for every (plan, key) seen since serve started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._quotas: dict[tuple[str, str], tuple[datetime, int]] = {}

    def check(self, plan: UsagePlan, key_id: str, method_key: str) -> Verdict:
        """Count one request on `method_key` ("/path/VERB") against the plan for this key."""
        now = time.monotonic()
        with self._lock:
            throttles: list[tuple[str, Throttle]] = []
            if plan.throttle is not None:
                throttles.append(("*", plan.throttle))
            method_throttle = plan.method_throttles.get(method_key)
            if method_throttle is not None:
                throttles.append((method_key, method_throttle))
            for scope, throttle in throttles:
                if not self._bucket(plan.id, key_id, scope, throttle, now).take(now):
                    return Verdict.THROTTLED
            if plan.quota is not None and not self._count_quota(plan.id, key_id, plan.quota):
                return Verdict.QUOTA_EXCEEDED
        return Verdict.OK

    def _bucket(
        self, plan_id: str, key_id: str, scope: str, throttle: Throttle, now: float
    ) -> TokenBucket:
        slot = (plan_id, key_id, scope)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = TokenBucket.full(throttle, now)
        elif bucket.rate != throttle.rate or bucket.burst != max(throttle.burst, 1):
            bucket.retune(throttle)
        return bucket

    def _count_quota(self, plan_id: str, key_id: str, quota: Quota) -> bool:
        start = period_start(quota.period, datetime.now(UTC))
        slot = (plan_id, key_id)
        seen = self._quotas.get(slot)
        # The plan's offset is what the first period already used up.
        used = seen[1] if seen is not None and seen[0] == start else None
        if used is None:
            used = quota.offset if seen is None else 0
        if used >= quota.limit:
            self._quotas[slot] = (start, used)
            return False
        self._quotas[slot] = (start, used + 1)
        return True

    def remaining(self, plan: UsagePlan, key_id: str) -> int | None:
        """Requests left in the current quota period (None: the plan has no quota)."""
        if plan.quota is None:
            return None
        start = period_start(plan.quota.period, datetime.now(UTC))
        with self._lock:
            seen = self._quotas.get((plan.id, key_id))
        used = seen[1] if seen is not None and seen[0] == start else 0
        return max(plan.quota.limit - used, 0)
