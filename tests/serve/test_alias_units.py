"""The pure parts of serve's alias routing and alarm evaluation: the version chooser with
explicit random numbers, the routing-config check, the metric store, and the alarm
evaluator over explicit samples and clocks."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

import boto3
import pytest
from scarab.serve.alarm_watcher import evaluate_all
from scarab.serve.alarms import (
    ALARM,
    INSUFFICIENT,
    OK,
    UnsupportedAlarm,
    evaluate,
    parse_alarm,
    reason_data,
    statistic,
)
from scarab.serve.aliases import choose, routing_problem, split_ref
from scarab.serve.metrics import Invocation, MetricStore, dimensions
from scarab.serve.routing import Router
from scarab.serve.snapshot import FunctionConfig, Snapshot

from tests.support.moto_server import MotoServer

ARN = "arn:aws:lambda:us-east-1:123456789012:function:app-dev-fn"


def _fn(version: str) -> FunctionConfig:
    return FunctionConfig(
        name="app-dev-fn",
        arn=f"{ARN}:{version}",
        code_sha256="",
        handler="h.handler",
        runtime="python3.12",
        timeout_s=3,
        memory_mb=128,
        environment=MappingProxyType({}),
        version=version,
    )


# --- chooser -----------------------------------------------------------------


def test_the_weighted_version_takes_the_first_slice_of_the_unit_interval() -> None:
    one, two = _fn("1"), _fn("2")
    weighted = ((two, 0.2),)
    assert choose(one, weighted, 0.0) is two
    assert choose(one, weighted, 0.1999) is two
    assert choose(one, weighted, 0.2) is one
    assert choose(one, weighted, 0.9999) is one
    assert choose(one, (), 0.0) is one


def test_several_weighted_versions_take_consecutive_slices() -> None:
    one, two, three = _fn("1"), _fn("2"), _fn("3")
    weighted = ((two, 0.25), (three, 0.5))
    assert choose(one, weighted, 0.24) is two
    assert choose(one, weighted, 0.25) is three
    assert choose(one, weighted, 0.74) is three
    assert choose(one, weighted, 0.75) is one


def test_qualified_references_split_into_function_and_qualifier() -> None:
    assert split_ref(f"{ARN}:live") == (ARN, "live")
    assert split_ref(f"{ARN}:7") == (ARN, "7")
    assert split_ref(ARN) == (ARN, None)
    assert split_ref("app-dev-fn:live") == ("app-dev-fn", "live")
    assert split_ref("app-dev-fn") == ("app-dev-fn", None)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"2": 1.5}, "outside [0, 1)"),
        ({"2": -0.1}, "outside [0, 1)"),
        ({"2": 1.0}, "outside [0, 1)"),
        ({"2": float("nan")}, "outside [0, 1)"),
        ({"2": "0.2"}, "not a number"),
        ({"9": 0.2}, "version 9 does not exist"),
        ({"1": 0.2}, "both the alias's version"),
        ({"2": 0.6, "3": 0.5}, "add up to 1.1"),
    ],
)
def test_unservable_routing_configs_are_named(weights: dict[str, Any], expected: str) -> None:
    problem = routing_problem("1", weights, {"1", "2", "3"})
    assert problem is not None and expected in problem


def test_servable_routing_configs_pass() -> None:
    assert routing_problem("1", {}, {"1"}) is None
    assert routing_problem("1", {"2": 0.2}, {"1", "2"}) is None
    assert routing_problem("1", {"2": 0.0}, {"1", "2"}) is None


# --- metric store ------------------------------------------------------------


def test_an_alias_invocation_is_recorded_under_lambdas_dimension_sets() -> None:
    store = MetricStore(clock=lambda: 1000.0)
    store.record_invocation(Invocation("fn", "live", "2", 12.0, error=True), at=990.0)
    resource = dimensions({"FunctionName": "fn", "Resource": "fn:live"})
    executed = dimensions({"FunctionName": "fn", "Resource": "fn:live", "ExecutedVersion": "2"})
    for dims in (dimensions({"FunctionName": "fn"}), resource, executed):
        assert store.samples("AWS/Lambda", "Errors", dims, 0, 2000) == [(990.0, 1.0)]
        assert store.samples("AWS/Lambda", "Duration", dims, 0, 2000) == [(990.0, 12.0)]
    # Exact match: a subset or superset of the dimensions is another series.
    assert store.samples("AWS/Lambda", "Errors", dimensions({"Resource": "fn:live"}), 0, 2000) == []


def test_the_store_keeps_a_bounded_window() -> None:
    now = [0.0]
    store = MetricStore(window_s=60, max_per_series=3, clock=lambda: now[0])
    dims = {"FunctionName": "fn"}
    for t in range(5):
        store.put("AWS/Lambda", "Invocations", dims, 1, at=float(t))
    got = store.samples("AWS/Lambda", "Invocations", dimensions(dims), 0, 100)
    assert [t for t, _ in got] == [2.0, 3.0, 4.0]  # at most 3 per series
    now[0] = 63.5
    got = store.samples("AWS/Lambda", "Invocations", dimensions(dims), 0, 100)
    assert [t for t, _ in got] == [4.0]  # older than the 60 s window: gone


# --- evaluator ---------------------------------------------------------------


def _alarm(**over: Any) -> dict[str, Any]:
    """An alarm as DescribeAlarms returns it, shaped like the deploy's (h/alarms)."""
    raw: dict[str, Any] = {
        "AlarmName": "app-dev-fn-errors",
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Dimensions": [
            {"Name": "FunctionName", "Value": "fn"},
            {"Name": "Resource", "Value": "fn:live"},
        ],
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1.0,
        "TreatMissingData": "notBreaching",
        "StateValue": "OK",
    }
    raw.update(over)
    return {k: v for k, v in raw.items() if v is not None}


def _samples(points: list[tuple[float, float]]) -> Any:
    return lambda start, end: [(t, v) for t, v in points if start <= t < end]


def test_errors_in_the_last_period_put_the_alarm_in_alarm_and_the_reason_names_them() -> None:
    spec = parse_alarm(_alarm())
    result = evaluate(spec, _samples([(950.0, 1.0), (955.0, 0.0), (960.0, 1.0)]), now=1000.0)
    assert result.state == ALARM
    assert result.datapoints == ((940.0, 2.0),)
    assert "1 out of the last 1 datapoints [2 (" in result.reason
    assert "greater than or equal to the threshold (1)" in result.reason


def test_healthy_samples_or_no_samples_are_ok_when_missing_data_is_not_breaching() -> None:
    spec = parse_alarm(_alarm(StateValue="ALARM"))
    assert evaluate(spec, _samples([(950.0, 0.0), (990.0, 0.0)]), 1000.0).state == OK
    # Errors from before the period count no more.
    assert evaluate(spec, _samples([(930.0, 1.0)]), 1000.0).state == OK
    assert evaluate(spec, _samples([]), 1000.0).datapoints == ((940.0, None),)


def test_missing_data_modes() -> None:
    nothing = _samples([])
    for mode, state in (("breaching", ALARM), ("missing", INSUFFICIENT), ("notBreaching", OK)):
        spec = parse_alarm(_alarm(TreatMissingData=mode))
        assert evaluate(spec, nothing, 1000.0).state == state, mode
    ignore = parse_alarm(_alarm(TreatMissingData="ignore", StateValue="ALARM"))
    assert evaluate(ignore, nothing, 1000.0).state == ALARM  # keeps its state


def test_m_out_of_n_datapoints() -> None:
    spec = parse_alarm(_alarm(Period=10, EvaluationPeriods=3, DatapointsToAlarm=2))
    # Periods [970,980) [980,990) [990,1000): one breaching, then two.
    one = _samples([(975.0, 1.0), (985.0, 0.0), (995.0, 0.0)])
    two = _samples([(975.0, 1.0), (985.0, 0.0), (995.0, 3.0)])
    assert evaluate(spec, one, 1000.0).state == OK
    result = evaluate(spec, two, 1000.0)
    assert result.state == ALARM
    assert "2 out of the last 3 datapoints" in result.reason


def test_duration_p99_as_an_extended_statistic() -> None:
    raw = _alarm(
        MetricName="Duration",
        Statistic=None,
        ExtendedStatistic="p99",
        Threshold=800.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    spec = parse_alarm(raw)
    fast = [(950.0 + i * 0.1, 10.0) for i in range(99)]
    assert evaluate(spec, _samples([*fast, (999.0, 5000.0)]), 1000.0).state == OK  # p99 is 10
    slow = [*fast[:97], (998.0, 900.0), (999.0, 5000.0)]
    assert evaluate(spec, _samples(slow), 1000.0).state == ALARM  # p99 of 99 is the 99th


def test_api_5xx_average_on_api_name_and_stage() -> None:
    raw = _alarm(
        AlarmName="app-dev-api-5xx",
        Namespace="AWS/ApiGateway",
        MetricName="5XXError",
        Dimensions=[{"Name": "ApiName", "Value": "app-dev"}, {"Name": "Stage", "Value": "dev"}],
        Statistic="Average",
        Threshold=0.05,
        ComparisonOperator="GreaterThanThreshold",
    )
    spec = parse_alarm(raw)
    assert evaluate(spec, _samples([(990.0, 0.0)] * 19 + [(991.0, 1.0)]), 1000.0).state == OK
    assert evaluate(spec, _samples([(990.0, 0.0)] * 9 + [(991.0, 1.0)]), 1000.0).state == ALARM


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("Sum", [1.0, 2.0, 3.0], 6.0),
        ("Average", [1.0, 2.0, 3.0], 2.0),
        ("Maximum", [1.0, 5.0, 3.0], 5.0),
        ("Minimum", [4.0, 2.0, 3.0], 2.0),
        ("SampleCount", [4.0, 2.0, 3.0], 3.0),
        ("p50", [4.0, 1.0, 3.0, 2.0], 2.0),
        ("p99.9", [float(i) for i in range(1, 1001)], 999.0),
        ("p100", [1.0, 9.0], 9.0),
    ],
)
def test_statistics(name: str, values: list[float], expected: float) -> None:
    assert statistic(name, values) == expected


@pytest.mark.parametrize(
    "over",
    [
        {"Statistic": "Sum", "ExtendedStatistic": "p99"},
        {"Statistic": "Median"},
        {"ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"},
        {"Metrics": [{"Id": "m1"}]},
        {"DatapointsToAlarm": 3},
    ],
)
def test_alarms_serve_cannot_evaluate_are_refused(over: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedAlarm):
        parse_alarm(_alarm(**over))


def test_reason_data_lists_the_judged_datapoints() -> None:
    spec = parse_alarm(_alarm(Period=10, EvaluationPeriods=2))
    result = evaluate(spec, _samples([(995.0, 1.0), (996.0, 1.0)]), 1000.0)
    data = reason_data(spec, result, 1000.0)
    assert data["statistic"] == "Sum" and data["period"] == 10
    assert data["recentDatapoints"] == [2.0]  # newest first; the empty period has none
    assert [p.get("value") for p in data["evaluatedDatapoints"]] == [2.0, None]


# --- one evaluation round against the moto server ------------------------------


def _snapshot(function: str) -> Snapshot:
    fn = dataclasses.replace(
        _fn("$LATEST"), name=function, arn=f"{ARN[: -len('app-dev-fn')]}{function}"
    )
    return Snapshot(
        rest_api_id="abc",
        stage="dev",
        region="us-east-1",
        account_id="123456789012",
        binary_media_types=(),
        stage_variables=MappingProxyType({}),
        router=Router(()),
        gateway_responses=MappingProxyType({}),
        keys=MappingProxyType({}),
        functions=MappingProxyType({"ref": fn}),
        api_name="app-dev",
    )


@pytest.mark.emulator
def test_a_round_sets_only_changed_in_scope_alarms(aws: MotoServer) -> None:
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=aws.url)
    common: dict[str, Any] = {
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
    }
    mine = [
        {"Name": "FunctionName", "Value": "app-dev-fn"},
        {"Name": "Resource", "Value": "app-dev-fn:live"},
    ]
    cloudwatch.put_metric_alarm(AlarmName="app-dev-fn-errors", Dimensions=mine, **common)
    # Same prefix, but on a function this serve does not run (another stage's).
    other = [{"Name": "FunctionName", "Value": "app-dev-eu-fn"}]
    cloudwatch.put_metric_alarm(AlarmName="app-dev-eu-fn-errors", Dimensions=other, **common)
    cloudwatch.put_metric_alarm(AlarmName="other-dev-fn-errors", Dimensions=mine, **common)
    store = MetricStore(clock=lambda: 10_000.0)
    store.record_invocation(Invocation("app-dev-fn", "live", "3", 5.0, error=True), at=9_990.0)
    snapshot = _snapshot("app-dev-fn")

    changed = evaluate_all(cloudwatch, "app-dev-", store, snapshot, now=10_000.0)
    assert changed == {"app-dev-fn-errors": "ALARM"}
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert alarms["app-dev-fn-errors"]["StateValue"] == "ALARM"
    assert "1 out of the last 1 datapoints [1 (" in alarms["app-dev-fn-errors"]["StateReason"]
    assert alarms["app-dev-eu-fn-errors"]["StateValue"] == "OK"  # untouched
    assert alarms["other-dev-fn-errors"]["StateValue"] == "OK"  # another app's
    # Same state next round: nothing is set again.
    assert evaluate_all(cloudwatch, "app-dev-", store, snapshot, now=10_001.0) == {}
    # A minute later the errors are out of the period: back to OK (missing = not breaching).
    assert evaluate_all(cloudwatch, "app-dev-", store, snapshot, now=10_060.0) == {
        "app-dev-fn-errors": "OK"
    }
