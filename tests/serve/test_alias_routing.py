"""`scarab serve` honours a Lambda alias's weighted routing and evaluates the stage's
CloudWatch alarms over its local metrics, through a real serve process.

One serve for the module. The probe (tests/serve/probe/probe.py) is deployed as its own
function behind /canary/{proxy+}; the test publishes three versions of it that differ
only in their configuration, which Lambda snapshots into each version: PROBE_VAR=one,
two, three, and version 3 also PROBE_FAIL=1, which makes its handler raise. Then the
route's integration is pointed at the alias `live` (put_integration + create_deployment),
and the alias is moved with update_alias, exactly as a deploy or `scarab rollback` would
do it against the emulator (until the deploy publishes versions itself).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.serve.support import clients, emulator_url, http, install_probe, make_project
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, start_serve

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

FUNCTION = "scarab-dev-canary"
ALIAS = f"{FUNCTION}:live"
VERSION_HEADER = "x-scarab-version"


@dataclass
class Canary:
    serve: ServeProcess
    project: Path
    lam: Any
    cloudwatch: Any

    @property
    def url(self) -> str:
        return f"{self.serve.api_url}/canary/version"

    def route(self, version: str, weights: dict[str, float] | None = None) -> None:
        """Move the alias (what a deploy, rollback or split does)."""
        self.lam.update_alias(
            FunctionName=FUNCTION,
            Name="live",
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": weights or {}},
        )

    def until_serving(self, versions: set[str]) -> None:
        """Wait until serve's snapshot routes to exactly `versions` (the watcher reads the
        emulator in the background)."""
        seen: set[str] = set()

        def check() -> bool:
            for _ in range(20):
                seen.add(http(self.url).headers.get(VERSION_HEADER, "none"))
            if seen == versions:
                return True
            seen.clear()
            return False

        wait_until(check, timeout=60, what=f"serve routing to versions {sorted(versions)}")

    def state(self, name: str) -> dict[str, Any]:
        alarms = self.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        assert len(alarms) == 1, alarms
        return dict(alarms[0])


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Canary]:
    project = make_project(tmp_path_factory.mktemp("alias-project"), web=False)
    # Seeded: the split test counts over a reproducible sequence of draws.
    env = {
        "GOOGLE_API_KEY": None,
        "GEMINI_API_KEY": None,
        "AWS_ENDPOINT_URL": None,
        "AWS_PROFILE": None,
        "SCARAB_SERVE_SEED": "14",
    }
    proc = start_serve(project, env=env)
    try:
        arn = install_probe(project, FUNCTION, "canary", env={"PROBE_VAR": "one"})
        apigw, lam = clients(project)
        for variables in (
            {"PROBE_VAR": "one"},
            {"PROBE_VAR": "two"},
            {"PROBE_VAR": "three", "PROBE_FAIL": "1"},
        ):
            lam.update_function_configuration(
                FunctionName=FUNCTION, Environment={"Variables": variables}
            )
            lam.publish_version(FunctionName=FUNCTION)
        lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
        api_id = proc_api_id(apigw)
        resource = next(
            r
            for r in apigw.get_resources(restApiId=api_id, limit=500)["items"]
            if r["path"] == "/canary/{proxy+}"
        )
        apigw.put_integration(
            restApiId=api_id,
            resourceId=resource["id"],
            httpMethod="ANY",
            type="AWS_PROXY",
            integrationHttpMethod="POST",
            uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}:live/invocations",
        )
        apigw.create_deployment(restApiId=api_id, stageName="dev")
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        cloudwatch = session.client("cloudwatch", endpoint_url=emulator_url(project))
        yield Canary(proc, project, lam, cloudwatch)
    finally:
        proc.stop()
        print(proc.output())


def proc_api_id(apigw: Any) -> str:
    apis = apigw.get_rest_apis()["items"]
    return str(next(a["id"] for a in apis if a["name"] == "scarab-dev"))


def test_a_20_percent_split_over_500_requests_is_within_binomial_bounds(canary: Canary) -> None:
    canary.route("1", {"2": 0.2})
    canary.until_serving({"1", "2"})
    n, p = 500, 0.2
    counts: Counter[str] = Counter()
    pids: dict[str, set[int]] = {}
    for _ in range(n):
        resp = http(canary.url)
        assert resp.status == 200, resp.body
        version = resp.headers[VERSION_HEADER]
        body = resp.json()
        # Each version runs its own configuration, in its own workers.
        assert body["version"] == version
        assert body["var"] == {"1": "one", "2": "two"}[version]
        pids.setdefault(version, set()).add(body["pid"])
        counts[version] += 1
    sigma = math.sqrt(n * p * (1 - p))
    print(f"version 2 answered {counts['2']} of {n} (expected {n * p:g} +- {4 * sigma:.1f})")
    assert set(counts) == {"1", "2"}
    assert abs(counts["2"] - n * p) <= 4 * sigma, counts
    assert not pids["1"] & pids["2"], pids


def test_the_stage_routes_answer_through_the_live_alias(canary: Canary) -> None:
    # serve's own deploy publishes version 1 of each function and points the integrations
    # at `live` (before versions, these routes were unqualified and carried no header).
    resp = http(f"{canary.serve.api_url}/health")
    assert resp.status == 200, resp.body
    assert resp.headers[VERSION_HEADER] == "1"


@pytest.mark.parametrize(
    ("weights", "problem"),
    [({"2": 1.5}, "outside [0, 1)"), ({"9": 0.1}, "version 9 does not exist")],
)
def test_an_unservable_routing_config_is_a_configuration_error(
    canary: Canary, weights: dict[str, float], problem: str
) -> None:
    canary.route("1", weights)  # the emulator accepts both
    wait_until(lambda: http(canary.url).status == 500, timeout=60, what="the routing error")
    resp = http(canary.url)
    assert resp.json() == {"message": "Internal server error"}
    assert resp.headers["x-amzn-errortype"] == "InternalServerErrorException"
    wait_until(lambda: problem in canary.serve.output(), what="serve logging the problem")
    canary.route("1")
    canary.until_serving({"1"})  # serve kept running and recovers


def _put_alarm(canary: Canary, name: str, **spec: Any) -> None:
    canary.cloudwatch.put_metric_alarm(
        AlarmName=name,
        EvaluationPeriods=1,
        DatapointsToAlarm=1,
        TreatMissingData="notBreaching",
        Period=10,
        **spec,
    )


def test_a_failing_weighted_version_drives_the_errors_alarm_on_the_alias(
    canary: Canary,
) -> None:
    errors, api = "scarab-dev-canary-errors", "scarab-dev-api-5xx"
    _put_alarm(
        canary,
        errors,
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[
            {"Name": "FunctionName", "Value": FUNCTION},
            {"Name": "Resource", "Value": ALIAS},
        ],
        Statistic="Sum",
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Threshold=1.0,
    )
    _put_alarm(
        canary,
        api,
        Namespace="AWS/ApiGateway",
        MetricName="5XXError",
        Dimensions=[{"Name": "ApiName", "Value": "scarab-dev"}, {"Name": "Stage", "Value": "dev"}],
        Statistic="Average",
        ComparisonOperator="GreaterThanThreshold",
        Threshold=0.05,
    )
    # Another stage's alarm on a function this serve does not run: left alone.
    _put_alarm(
        canary,
        "scarab-dev-eu-canary-errors",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "scarab-dev-eu-canary"}],
        Statistic="Sum",
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Threshold=1.0,
    )
    canary.cloudwatch.set_alarm_state(
        AlarmName="scarab-dev-eu-canary-errors", StateValue="ALARM", StateReason="elsewhere"
    )
    canary.route("1")
    canary.until_serving({"1"})
    wait_until(lambda: canary.state(errors)["StateValue"] == "OK", what="the alarm OK at first")

    canary.route("1", {"3": 0.3})
    canary.until_serving({"1", "3"})

    def failing_traffic_alarms() -> bool:
        statuses = Counter(http(canary.url).status for _ in range(20))
        assert set(statuses) <= {200, 502}, statuses  # version 3 fails: a 502
        return all(canary.state(n)["StateValue"] == "ALARM" for n in (errors, api))

    wait_until(failing_traffic_alarms, timeout=60, what="the Errors and 5XX alarms in ALARM")
    reason = canary.state(errors)["StateReason"]
    data = json.loads(canary.state(errors)["StateReasonData"])
    assert data["statistic"] == "Sum" and data["recentDatapoints"][0] >= 1, data
    assert reason.startswith("Threshold Crossed: 1 out of the last 1 datapoints ["), reason
    assert "greater than or equal to the threshold (1)" in reason

    # Roll back: healthy traffic only, and the alarms return to OK once the period with
    # the errors has passed.
    canary.route("1")
    canary.until_serving({"1"})

    def healthy_traffic_ok() -> bool:
        assert http(canary.url).status == 200
        return all(canary.state(n)["StateValue"] == "OK" for n in (errors, api))

    started = time.monotonic()
    wait_until(healthy_traffic_ok, timeout=60, what="the alarms back to OK")
    assert time.monotonic() - started < 60
    assert canary.state("scarab-dev-eu-canary-errors")["StateValue"] == "ALARM"


def test_the_errors_alarm_returns_to_ok_when_traffic_stops(canary: Canary) -> None:
    name = "scarab-dev-canary-errors-stop"
    _put_alarm(
        canary,
        name,
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[
            {"Name": "FunctionName", "Value": FUNCTION},
            {"Name": "Resource", "Value": ALIAS},
            {"Name": "ExecutedVersion", "Value": "3"},
        ],
        Statistic="Sum",
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Threshold=1.0,
    )
    canary.route("1", {"3": 0.5})
    canary.until_serving({"1", "3"})
    wait_until(lambda: canary.state(name)["StateValue"] == "ALARM", timeout=60, what="ALARM")
    canary.route("1")
    # No more requests at all: missing data is not breaching, so the alarm goes back.
    wait_until(lambda: canary.state(name)["StateValue"] == "OK", timeout=60, what="OK again")
