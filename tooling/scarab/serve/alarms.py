"""CloudWatch alarm evaluation over serve's local metrics (pure: samples and a clock in,
a state and its reason out).

`parse_alarm` reads one alarm as DescribeAlarms returns it; `evaluate` applies
CloudWatch's rules to it: the statistic (Sum, Average, Maximum, Minimum, SampleCount, or
the ExtendedStatistic pNN) of each of the last EvaluationPeriods periods, the comparison
with the threshold, DatapointsToAlarm of them breaching for ALARM, and TreatMissingData
for periods without samples (`breaching`/`notBreaching` fill them; `missing` and
`ignore` judge the present datapoints, and never say OK on breaching ones alone: see
`_too_few`). The periods end at `now` (CloudWatch aligns them to the
clock and waits for late data; locally nothing arrives late, so the newest period is
the one that just ended).
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scarab.serve.metrics import Dimensions, dimensions

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
STATISTICS = ("Sum", "Average", "Maximum", "Minimum", "SampleCount")
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
COMPARISONS: Mapping[str, tuple[str, Callable[[float, float], bool]]] = {
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda v, t: v >= t),
    "GreaterThanThreshold": ("greater than", lambda v, t: v > t),
    "LessThanThreshold": ("less than", lambda v, t: v < t),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda v, t: v <= t),
}
MISSING_MODES = ("breaching", "notBreaching", "ignore", "missing")


class UnsupportedAlarm(ValueError):
    """An alarm serve cannot evaluate (metric math, anomaly bands...); left as it is."""


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    namespace: str
    metric: str
    dimensions: Dimensions
    statistic: str  # one of STATISTICS, or "pNN" (ExtendedStatistic)
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int
    comparison: str
    threshold: float
    treat_missing: str
    state: str  # the state the alarm has now

    def dimension(self, name: str) -> str | None:
        return next((v for k, v in self.dimensions if k == name), None)


@dataclass(frozen=True)
class Evaluation:
    state: str
    reason: str
    # (period start, value or None when the period has no samples), oldest first.
    datapoints: tuple[tuple[float, float | None], ...]


def parse_alarm(raw: Mapping[str, Any]) -> AlarmSpec:
    """One MetricAlarms entry of DescribeAlarms (UnsupportedAlarm when serve cannot
    evaluate it)."""
    name = str(raw.get("AlarmName") or "")
    if raw.get("Metrics"):
        raise UnsupportedAlarm(f"{name}: metric math alarms are not evaluated locally")
    statistic = raw.get("ExtendedStatistic") or raw.get("Statistic")
    if raw.get("ExtendedStatistic") and raw.get("Statistic"):
        raise UnsupportedAlarm(f"{name}: sets both Statistic and ExtendedStatistic")
    if not isinstance(statistic, str) or not (
        statistic in STATISTICS or _PERCENTILE.match(statistic)
    ):
        raise UnsupportedAlarm(f"{name}: statistic {statistic!r} is not evaluated locally")
    comparison = str(raw.get("ComparisonOperator") or "")
    if comparison not in COMPARISONS:
        raise UnsupportedAlarm(f"{name}: comparison {comparison!r} is not evaluated locally")
    try:
        period = int(raw["Period"])
        periods = int(raw["EvaluationPeriods"])
        threshold = float(raw["Threshold"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UnsupportedAlarm(f"{name}: no Period, EvaluationPeriods or Threshold") from exc
    to_alarm = int(raw.get("DatapointsToAlarm") or periods)
    if period <= 0 or periods <= 0 or not 0 < to_alarm <= periods or not math.isfinite(threshold):
        raise UnsupportedAlarm(f"{name}: Period, EvaluationPeriods or DatapointsToAlarm invalid")
    missing = str(raw.get("TreatMissingData") or "missing")
    if missing not in MISSING_MODES:
        missing = "missing"
    dims = {str(d["Name"]): str(d["Value"]) for d in raw.get("Dimensions") or []}
    return AlarmSpec(
        name=name,
        namespace=str(raw.get("Namespace") or ""),
        metric=str(raw.get("MetricName") or ""),
        dimensions=dimensions(dims),
        statistic=statistic,
        period_s=period,
        evaluation_periods=periods,
        datapoints_to_alarm=to_alarm,
        comparison=comparison,
        threshold=threshold,
        treat_missing=missing,
        state=str(raw.get("StateValue") or INSUFFICIENT),
    )


def statistic(name: str, values: Sequence[float]) -> float:
    """CloudWatch's statistic `name` of a non-empty period's values. A percentile is
    the nearest-rank value (p99 of 100 samples is the 99th smallest)."""
    if name == "Sum":
        return math.fsum(values)
    if name == "Average":
        return math.fsum(values) / len(values)
    if name == "Maximum":
        return max(values)
    if name == "Minimum":
        return min(values)
    if name == "SampleCount":
        return float(len(values))
    match = _PERCENTILE.match(name)
    if match is None:
        raise ValueError(f"unknown statistic {name!r}")
    ordered = sorted(values)
    # Rounded first: 99.9 / 100 * 1000 is 999.0000000000001 in floating point.
    rank = math.ceil(round(float(match.group(1)) / 100 * len(ordered), 9))
    return ordered[min(len(ordered), max(1, rank)) - 1]


Samples = Callable[[float, float], Sequence[tuple[float, float]]]


def evaluate(spec: AlarmSpec, samples: Samples, now: float) -> Evaluation:
    """The state `spec` should be in at `now`. `samples(start, end)` gives the metric's
    (timestamp, value) pairs with start <= timestamp < end."""
    points: list[tuple[float, float | None]] = []
    for i in range(spec.evaluation_periods, 0, -1):
        start = now - i * spec.period_s
        values = [v for _, v in samples(start, start + spec.period_s)]
        points.append((start, statistic(spec.statistic, values) if values else None))
    word, breaches = COMPARISONS[spec.comparison]
    present = [v for _, v in points if v is not None]
    missing = len(points) - len(present)
    breaching = sum(1 for v in present if breaches(v, spec.threshold))
    mode = spec.treat_missing
    if not present and mode in ("missing", "ignore"):
        state = INSUFFICIENT if mode == "missing" else spec.state
        reason = (
            f"Insufficient Data: no datapoints in the last {spec.evaluation_periods} "
            f"period(s) of {spec.period_s}s"
        )
        return Evaluation(state, reason, tuple(points))
    if mode == "breaching":
        breaching += missing
    held = _too_few(spec, points, breaches) if missing and mode in ("missing", "ignore") else None
    if held is not None:
        return Evaluation(held[0], held[1], tuple(points))
    state = ALARM if breaching >= spec.datapoints_to_alarm else OK
    shown = ", ".join(_datapoint(start, v) for start, v in reversed(points))
    counted = len(points) if mode in ("breaching", "notBreaching") else len(present)
    if state == ALARM:
        verb = "were" if breaching != 1 else "was"
        reason = (
            f"Threshold Crossed: {breaching} out of the last {counted} datapoints [{shown}] "
            f"{verb} {word} the threshold ({spec.threshold:g}) (minimum "
            f"{spec.datapoints_to_alarm} datapoint(s) for OK -> ALARM transition)."
        )
    else:
        reason = (
            f"Threshold Crossed: {breaching} out of the last {counted} datapoints [{shown}] "
            f"{'was' if breaching == 1 else 'were'} {word} the threshold ({spec.threshold:g}) "
            f"(fewer than {spec.datapoints_to_alarm} needed for ALARM; missing data "
            f"treated as {mode})."
        )
    return Evaluation(state, reason, tuple(points))


def _too_few(
    spec: AlarmSpec,
    points: Sequence[tuple[float, float | None]],
    breaches: Callable[[float, float], bool],
) -> tuple[str, str] | None:
    """`missing` and `ignore` with some periods missing and fewer than DatapointsToAlarm
    of the present ones breaching: (state, reason) when the present ones are all
    breaching (CloudWatch never says OK on them), None when the usual count decides
    (a healthy datapoint among them: OK; M of them breaching: ALARM).

    CloudWatch alarms on fewer than M breaching datapoints once the oldest of them is at
    least M periods old and none after it is healthy; a younger breach might be followed
    by a healthy datapoint, so the alarm keeps its state until then ("avoiding premature
    transitions"). `ignore` keeps its state in both cases.
    """
    m = spec.datapoints_to_alarm
    present = [v for _, v in points if v is not None]
    if sum(1 for v in present if breaches(v, spec.threshold)) >= m:
        return None
    if not all(breaches(v, spec.threshold) for v in present):
        return None
    oldest = next(i for i, (_, v) in enumerate(points) if v is not None)
    age = len(points) - oldest  # periods: the newest is 1 old
    shown = ", ".join(_datapoint(start, v) for start, v in reversed(points))
    count = f"{len(present)} datapoint(s) present [{shown}], all breaching"
    if age >= m and spec.treat_missing == "missing":
        return ALARM, (
            f"Threshold Crossed: {count}; the oldest is {age} period(s) old, at least the"
            f" {m} datapoint(s) needed for ALARM, and none since is healthy."
        )
    return spec.state, (
        f"Not enough data: {count}, fewer than the {m} needed for ALARM; the alarm keeps"
        f" its state (missing data treated as {spec.treat_missing})."
    )


def reason_data(spec: AlarmSpec, result: Evaluation, now: float) -> dict[str, Any]:
    """CloudWatch's StateReasonData for a threshold alarm: the datapoints it judged."""
    stat = "ExtendedStatistic" if spec.statistic not in STATISTICS else "Statistic"
    return {
        "version": "1.0",
        "queryDate": _iso(now),
        "startDate": _iso(now - spec.evaluation_periods * spec.period_s),
        stat.lower(): spec.statistic,
        "period": spec.period_s,
        "recentDatapoints": [v for _, v in reversed(result.datapoints) if v is not None],
        "threshold": spec.threshold,
        "evaluatedDatapoints": [
            {"timestamp": _iso(start), **({"value": v} if v is not None else {})}
            for start, v in reversed(result.datapoints)
        ],
    }


def _iso(when: float) -> str:
    moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _datapoint(start: float, value: float | None) -> str:
    when = datetime.datetime.fromtimestamp(start, datetime.UTC).strftime("%d/%m/%y %H:%M:%S")
    return f"{'missing' if value is None else f'{value:g}'} ({when})"
