"""Review 13 (adversarial): serve's alarm evaluation said OK on breaching data whenever
fewer datapoints than DatapointsToAlarm were present and missing data was treated as
`missing` or `ignore` (the default for alarms made by hand, and `ignore` for some AWS
namespaces). CloudWatch's documented rules: with every period present, M out of N; with
some missing, `breaching`/`notBreaching` fill the gaps, while `missing` and `ignore`
judge the present datapoints: M breaching is ALARM, a healthy one is OK, and breaching
ones alone alarm once the oldest is M periods old ("premature alarm" avoidance: before
that the alarm keeps its state; `ignore` keeps it in that case too)."""

from __future__ import annotations

from typing import Any

import pytest
from scarab.serve.alarms import ALARM, INSUFFICIENT, OK, evaluate, parse_alarm

NOW = 1000.0
PERIOD = 10.0
STATES = (OK, ALARM, INSUFFICIENT)


def _window(notation: str) -> Any:
    """Samples for the last periods before NOW, oldest first, in AWS's notation: `X`
    breaching (5 errors), `0` healthy (no error), `-` missing (no sample at all)."""
    marks = notation.split()
    points = []
    for i, mark in enumerate(marks):
        start = NOW - (len(marks) - i) * PERIOD
        if mark != "-":
            points.append((start + 1.0, 5.0 if mark == "X" else 0.0))
    return lambda start, end: [(t, v) for t, v in points if start <= t < end]


def _state(notation: str, mode: str, to_alarm: int, now_state: str) -> str:
    spec = parse_alarm(
        {
            "AlarmName": "app-dev-fn-errors", "Namespace": "AWS/Lambda", "MetricName": "Errors",
            "Dimensions": [{"Name": "FunctionName", "Value": "fn"}], "Statistic": "Sum",
            "Period": int(PERIOD), "EvaluationPeriods": len(notation.split()),
            "DatapointsToAlarm": to_alarm, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Threshold": 1.0, "TreatMissingData": mode, "StateValue": now_state,
        }
    )  # fmt: skip
    return evaluate(spec, _window(notation), NOW).state


KEEP = "keeps its state"
# (window oldest first, DatapointsToAlarm, {mode: expected}); 3 evaluation periods.
CASES = [
    # The breach is M periods old and nothing healthy came since: ALARM (missing).
    ("X - -", 3, {"missing": ALARM, "ignore": KEEP, "breaching": ALARM, "notBreaching": OK}),
    ("- X -", 2, {"missing": ALARM, "ignore": KEEP, "breaching": ALARM, "notBreaching": OK}),
    # Too recent to judge: the next datapoint may be healthy; no OK on breaching data.
    ("- - X", 3, {"missing": KEEP, "ignore": KEEP, "breaching": ALARM, "notBreaching": OK}),
    # M of the present ones breach: ALARM however the gap is treated.
    ("X - X", 2, {"missing": ALARM, "ignore": ALARM, "breaching": ALARM, "notBreaching": ALARM}),
    # A healthy datapoint among too few breaching ones: OK unless gaps breach.
    ("0 - X", 2, {"missing": OK, "ignore": OK, "breaching": ALARM, "notBreaching": OK}),
    ("- - 0", 2, {"missing": OK, "ignore": OK, "breaching": ALARM, "notBreaching": OK}),
    # Nothing at all: the four treatments part ways.
    ("- - -", 3, {"missing": INSUFFICIENT, "ignore": KEEP, "breaching": ALARM, "notBreaching": OK}),
    # Every period present: M out of N, the treatment is not needed.
    ("0 X X", 2, {"missing": ALARM, "ignore": ALARM, "breaching": ALARM, "notBreaching": ALARM}),
    ("X 0 X", 3, {"missing": OK, "ignore": OK, "breaching": OK, "notBreaching": OK}),
]


@pytest.mark.parametrize(("window", "to_alarm", "expected"), CASES)
def test_missing_data_follows_cloudwatchs_documented_rules(window, to_alarm, expected) -> None:
    for mode, want in expected.items():
        for now_state in STATES:  # each start state, so that "keeps" cannot pass by chance
            wanted = now_state if want == KEEP else want
            got = _state(window, mode, to_alarm, now_state)
            assert got == wanted, f"{window!r} M={to_alarm} {mode} from {now_state}"
