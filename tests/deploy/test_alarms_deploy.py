"""[alarms] and [budget] deployed to the moto server: the alarms' definitions, their topic
and subscription, the budget and its notifications; updates, removal and destroy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scarab.config import load_config
from scarab.deploy import DeployResult
from scarab.deploy.destroy import destroy

from tests.deploy.conftest import ANALYZE, MODELS, Recorder, client
from tests.support.moto_server import MotoServer

ACCOUNT = "123456789012"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:scarab-test-alarms"
ALARMS = """
[alarms]
email = "ops@example.com"
errors = 3
period_seconds = 120
evaluation_periods = 2

[budget]
monthly_usd = 25
thresholds = [50, 100]
"""
Deploy = Callable[..., tuple[DeployResult, Recorder]]


def _with(project: Path, extra: str) -> None:
    path = project / "scarab.toml"
    path.write_text(path.read_text() + extra)


def _alarms(aws: MotoServer) -> dict[str, dict[str, Any]]:
    cw = client("cloudwatch", aws)
    pages = cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix="scarab-test-")
    return {a["AlarmName"]: a for p in pages for a in p["MetricAlarms"]}


def _dims(alarm: dict[str, Any]) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def test_alarm_definitions(aws: MotoServer, project: Path, run_deploy: Deploy) -> None:
    _with(project, ALARMS)
    run_deploy()
    alarms = _alarms(aws)
    fn_metrics = ("errors", "throttles", "duration-p99")
    assert sorted(alarms) == sorted(
        [f"scarab-test-{k}-{m}" for k in ("analyze", "models") for m in fn_metrics]
        + ["scarab-test-api-5xx", "scarab-test-api-latency-p99"]
    )
    for name, alarm in alarms.items():
        # Never both: a Statistic or an ExtendedStatistic.
        assert ("Statistic" in alarm) != ("ExtendedStatistic" in alarm), name
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [TOPIC] and alarm["OKActions"] == [TOPIC]
        assert alarm["Period"] == 120 and alarm["EvaluationPeriods"] == 2
    for key, fn in (("analyze", ANALYZE), ("models", MODELS)):
        errors = alarms[f"scarab-test-{key}-errors"]
        assert _dims(errors) == {"FunctionName": fn, "Resource": f"{fn}:live"}
        assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
        assert (errors["Statistic"], errors["Threshold"]) == ("Sum", 3.0)
        assert errors["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        throttles = alarms[f"scarab-test-{key}-throttles"]
        assert (throttles["MetricName"], throttles["Statistic"]) == ("Throttles", "Sum")
        duration = alarms[f"scarab-test-{key}-duration-p99"]
        assert _dims(duration) == {"FunctionName": fn, "Resource": f"{fn}:live"}
        assert duration["ExtendedStatistic"] == "p99" and "Statistic" not in duration
        assert duration["Threshold"] == 24000.0  # 80% of the 30 s timeout
    five = alarms["scarab-test-api-5xx"]
    assert _dims(five) == {"ApiName": "scarab-test", "Stage": "test"}
    assert (five["Namespace"], five["MetricName"]) == ("AWS/ApiGateway", "5XXError")
    # 5XXError's Average is the share of requests that failed: 5% -> 0.05.
    assert (five["Statistic"], five["Threshold"]) == ("Average", 0.05)
    latency = alarms["scarab-test-api-latency-p99"]
    assert _dims(latency) == {"ApiName": "scarab-test", "Stage": "test"}
    assert latency["ExtendedStatistic"] == "p99" and "Statistic" not in latency
    assert latency["Threshold"] == 23200.0  # 80% of API Gateway's 29 s

    sns = client("sns", aws)
    subs = sns.list_subscriptions_by_topic(TopicArn=TOPIC)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "ops@example.com")]

    budgets = client("budgets", aws)
    budget = budgets.describe_budget(AccountId=ACCOUNT, BudgetName="scarab-test-monthly")["Budget"]
    assert budget["BudgetType"] == "COST" and budget["TimeUnit"] == "MONTHLY"
    assert float(budget["BudgetLimit"]["Amount"]) == 25.0
    assert budget["FilterExpression"] == {
        "And": [
            {"Tags": {"Key": "scarab:app", "Values": ["scarab"], "MatchOptions": ["EQUALS"]}},
            {"Tags": {"Key": "scarab:stage", "Values": ["test"], "MatchOptions": ["EQUALS"]}},
        ]
    }
    notes = budgets.describe_notifications_for_budget(
        AccountId=ACCOUNT, BudgetName="scarab-test-monthly"
    )["Notifications"]
    assert sorted((n["NotificationType"], n["Threshold"]) for n in notes) == [
        ("ACTUAL", 50.0), ("ACTUAL", 100.0), ("FORECASTED", 50.0), ("FORECASTED", 100.0),
    ]  # fmt: skip
    assert {n["ComparisonOperator"] for n in notes} == {"GREATER_THAN"}
    assert {n["ThresholdType"] for n in notes} == {"PERCENTAGE"}

    again, rec = run_deploy()
    assert again.up_to_date and rec.mutating == []


def test_budget_subscriber_is_the_email(project: Path, run_deploy: Deploy) -> None:
    """moto does not answer DescribeSubscribersForNotification: the subscriber is checked
    on the CreateBudget call as made."""
    _with(project, ALARMS)
    _, rec = run_deploy()
    creates = [p for model, p in rec.requests if model.name == "CreateBudget"]
    assert len(creates) == 1
    subscribers = [n["Subscribers"] for n in creates[0]["NotificationsWithSubscribers"]]
    assert subscribers == [[{"SubscriptionType": "EMAIL", "Address": "ops@example.com"}]] * 4


def test_threshold_change_updates_only_that_alarm(
    aws: MotoServer, project: Path, run_deploy: Deploy
) -> None:
    _with(project, ALARMS)
    run_deploy()
    _, rec = run_deploy({"alarms.errors": 7, "budget.monthly_usd": 40})
    puts = [p["AlarmName"] for model, p in rec.requests if model.name == "PutMetricAlarm"]
    assert sorted(puts) == ["scarab-test-analyze-errors", "scarab-test-models-errors"]
    assert _alarms(aws)["scarab-test-analyze-errors"]["Threshold"] == 7.0
    budget = client("budgets", aws).describe_budget(
        AccountId=ACCOUNT, BudgetName="scarab-test-monthly"
    )["Budget"]
    assert float(budget["BudgetLimit"]["Amount"]) == 40.0
    assert run_deploy({"alarms.errors": 7, "budget.monthly_usd": 40})[0].up_to_date


def test_statistic_drift_is_repaired(aws: MotoServer, project: Path, run_deploy: Deploy) -> None:
    """An alarm someone changed to a Statistic where scarab wants p99 is put back."""
    _with(project, ALARMS)
    run_deploy()
    name = "scarab-test-analyze-duration-p99"
    live = _alarms(aws)[name]
    client("cloudwatch", aws).put_metric_alarm(
        **{k: live[k] for k in ("AlarmName", "Namespace", "MetricName", "Dimensions", "Period",
                                "EvaluationPeriods", "Threshold", "ComparisonOperator")},
        Statistic="Average",
    )  # fmt: skip
    result, _ = run_deploy()
    assert [s.resource for s in result.plan] == [f"cloudwatch.alarm {name}"]
    fixed = _alarms(aws)[name]
    assert fixed["ExtendedStatistic"] == "p99" and "Statistic" not in fixed


def test_disabled_removes_alarms_topic_and_budget(
    aws: MotoServer, project: Path, run_deploy: Deploy
) -> None:
    _with(project, ALARMS)
    run_deploy()
    # Another stage's alarm under this stage's prefix (stage "test-x"): never deleted.
    cw = client("cloudwatch", aws)
    cw.put_metric_alarm(
        AlarmName="scarab-test-x-api-5xx", Namespace="AWS/ApiGateway", MetricName="5XXError",
        Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=0.1,
        ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "scarab:app", "Value": "scarab"}, {"Key": "scarab:stage", "Value": "test-x"}],
    )  # fmt: skip
    path = project / "scarab.toml"
    path.write_text(
        path.read_text().replace("[budget]\nmonthly_usd = 25\nthresholds = [50, 100]\n", "")
    )
    run_deploy({"alarms.enabled": False})
    assert list(_alarms(aws)) == ["scarab-test-x-api-5xx"]
    topics = client("sns", aws).list_topics()["Topics"]
    assert TOPIC not in [t["TopicArn"] for t in topics]
    assert client("budgets", aws).describe_budgets(AccountId=ACCOUNT).get("Budgets", []) == []
    assert run_deploy({"alarms.enabled": False})[0].up_to_date


def test_email_change_resubscribes(aws: MotoServer, project: Path, run_deploy: Deploy) -> None:
    _with(project, ALARMS)
    run_deploy()
    run_deploy({"alarms.email": "oncall@example.com"})
    subs = client("sns", aws).list_subscriptions_by_topic(TopicArn=TOPIC)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "oncall@example.com")]


def test_destroy_removes_alarms_topic_and_budget(
    aws: MotoServer, project: Path, run_deploy: Deploy
) -> None:
    _with(project, ALARMS)
    run_deploy()
    config = load_config(project)
    result = destroy(config, project_dir=project, endpoint_url=aws.url)
    assert "budgets.budget scarab-test-monthly" in result.removed
    assert _alarms(aws) == {}
    assert TOPIC not in [t["TopicArn"] for t in client("sns", aws).list_topics()["Topics"]]
    assert client("budgets", aws).describe_budgets(AccountId=ACCOUNT).get("Budgets", []) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[alarms]\nemail = "not-an-address"\n', "'alarms.email': not an email address"),
        ("[alarms]\nerrors = 0\n", "'alarms.errors'"),
        ("[alarms]\nperiod_seconds = 90\n", "'alarms.period_seconds'"),
        ("[alarms]\nduration_p99_ms = 31000\n", "above the analyze function's timeout"),
        (
            '[budget]\nmonthly_usd = 10\nemail = "a@example.com"\nthresholds = [80, 50]\n',
            "increasing order",
        ),
        (
            '[budget]\nmonthly_usd = 10\nemail = "a@example.com"\nthresholds = [0]\n',
            "'budget.thresholds.0'",
        ),
        ('[budget]\nmonthly_usd = -1\nemail = "a@example.com"\n', "'budget.monthly_usd'"),
        ("[budget]\nmonthly_usd = 10\n", "[budget] needs an email"),
    ],
)
def test_config_errors(project: Path, extra: str, message: str) -> None:
    from scarab.errors import ConfigError

    _with(project, extra)
    with pytest.raises(ConfigError) as err:
        load_config(project)
    assert message in str(err.value)


def test_alarms_command_shows_state_reason_threshold(
    aws: MotoServer, project: Path, run_deploy: Deploy, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from scarab.cli import app
    from typer.testing import CliRunner

    _with(project, ALARMS)
    run_deploy()
    client("cloudwatch", aws).set_alarm_state(
        AlarmName="scarab-test-analyze-errors",
        StateValue="ALARM",
        StateReason="Threshold Crossed: 1 datapoint [4.0] was >= 3.0",
    )
    monkeypatch.chdir(project)
    runner = CliRunner()
    got = runner.invoke(app, ["alarms", "--json", "--endpoint-url", aws.url])
    assert got.exit_code == 0, got.output
    doc = json.loads(got.output)
    by_name = {a["name"]: a for a in doc["alarms"]}
    assert len(by_name) == 8 and doc["stage"] == "test"
    errors = by_name["scarab-test-analyze-errors"]
    assert (errors["state"], errors["threshold"], errors["statistic"]) == ("ALARM", 3.0, "Sum")
    assert errors["reason"] == "Threshold Crossed: 1 datapoint [4.0] was >= 3.0"
    assert errors["dimensions"] == {"FunctionName": ANALYZE, "Resource": f"{ANALYZE}:live"}
    assert by_name["scarab-test-api-latency-p99"]["condition"] == "Latency p99 > 23200"
    plain = runner.invoke(app, ["alarms", "--endpoint-url", aws.url])
    assert plain.exit_code == 0, plain.output
    line = next(x for x in plain.output.splitlines() if x.startswith("scarab-test-analyze-errors"))
    assert "ALARM" in line and "Errors Sum >= 3" in line
    assert "Threshold Crossed: 1 datapoint [4.0] was >= 3.0" in plain.output


@pytest.mark.parametrize("fmt", ["cloudformation", "sam"])
def test_export_has_alarms_topic_and_budget(
    project: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scarab.deploy.export import render

    from tests.deploy.test_export import lint_matches, of_type, sam_translate

    _with(project, ALARMS)
    template = render(load_config(project), project_dir=project, fmt=fmt)  # type: ignore[arg-type]
    found = lint_matches(template)
    assert found["E"] == [] and found["W"] == [], found
    if fmt == "sam":
        assert lint_matches(sam_translate(template, monkeypatch))["E"] == []
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 8
    for props in alarms.values():
        assert ("Statistic" in props) != ("ExtendedStatistic" in props)
        assert props["AlarmActions"] == props["OKActions"] == [{"Ref": "AlarmTopic"}]
        assert props["TreatMissingData"] == "notBreaching"
        assert {"Key": "scarab:stage", "Value": "test"} in props["Tags"]
    duration = next(p for p in alarms.values() if p["AlarmName"].endswith("analyze-duration-p99"))
    assert duration["Dimensions"] == [
        {"Name": "FunctionName", "Value": ANALYZE},
        {"Name": "Resource", "Value": f"{ANALYZE}:live"},
    ]
    [topic] = of_type(template, "AWS::SNS::Topic").values()
    assert topic["TopicName"] == "scarab-test-alarms"
    [sub] = of_type(template, "AWS::SNS::Subscription").values()
    assert (sub["Protocol"], sub["Endpoint"]) == ("email", "ops@example.com")
    [budget] = of_type(template, "AWS::Budgets::Budget").values()
    assert budget["Budget"]["BudgetLimit"] == {"Amount": 25.0, "Unit": "USD"}
    assert len(budget["NotificationsWithSubscribers"]) == 4
    assert {"Key": "scarab:app", "Value": "scarab"} in budget["ResourceTags"]
