"""The canary bake against the moto server: it reads the alarms' states (moto never
evaluates alarms, so the tests set them with set_alarm_state, as AWS or `scarab serve`
would) and promotes or rolls back the `live` alias."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from scarab.aws import Aws
from scarab.errors import ConfigError
from scarab.naming import Names
from scarab.release.bake import BakeInterrupted, Release, bake, stage_alarm_names

from tests.deploy.conftest import ANALYZE, MODELS, client
from tests.deploy.release_support import alias, make_live, publish, without_versions

pytestmark = pytest.mark.emulator

NAMES = Names("scarab", "test")
CANARY = Release(function=ANALYZE, key="analyze", previous="1", published="2", canary_weight=0.1)
ERRORS = "scarab-test-analyze-errors"


def put_alarm(aws: Any, name: str) -> None:
    client("cloudwatch", aws).put_metric_alarm(
        AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "FunctionName", "Value": ANALYZE}], TreatMissingData="notBreaching",
    )  # fmt: skip


def set_state(aws: Any, name: str, state: str, reason: str) -> None:
    client("cloudwatch", aws).set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)


@pytest.fixture
def canary(run_deploy, aws) -> Aws:
    """A deployed stage whose analyze alias gives version 2 10% over version 1, and the
    stage's alarms: analyze's errors and the API's 5XX (OK), another stage's (ALARM)."""
    # The deploy's own alarms off: these tests put the alarms they watch themselves.
    run_deploy({"alarms.enabled": False})
    without_versions(aws, ANALYZE, MODELS)
    publish(aws, 2)
    make_live(aws, "1", {"2": 0.1})
    for name in (ERRORS, "scarab-test-api-5xx", "scarab-test-b-analyze-errors"):
        put_alarm(aws, name)
        set_state(aws, name, "OK", "fine")
    set_state(aws, "scarab-test-b-analyze-errors", "ALARM", "another stage's trouble")
    return Aws("us-east-1", endpoint_url=aws.url)


def test_the_default_alarms_are_the_stages_own(canary: Aws) -> None:
    names = stage_alarm_names(canary, NAMES)()
    # The fixture's deploy made none ([alarms] off): the two put for this stage, not stage b's.
    assert sorted(names) == [ERRORS, "scarab-test-api-5xx"]
    assert "scarab-test-b-analyze-errors" not in names


def test_no_alarm_in_alarm_promotes_the_new_version(canary: Aws, aws) -> None:
    said: list[str] = []
    outcome = bake(
        canary, NAMES, [CANARY], seconds=0.3, poll=0.1,
        alarm_names=stage_alarm_names(canary, NAMES), progress=said.append,
    )  # fmt: skip
    assert outcome.promoted and outcome.alarm is None
    assert alias(aws) == ("2", {})
    assert [m.as_dict()["after"]["version"] for m in outcome.moves] == ["2"]
    assert ERRORS in outcome.watched and "scarab-test-b-analyze-errors" not in outcome.watched
    assert "canary: analyze version 2 gets 10% (live stays on 1)" in said


def test_an_alarm_in_alarm_rolls_back_and_says_which_and_why(canary: Aws, aws) -> None:
    set_state(aws, ERRORS, "ALARM", "Threshold Crossed: 3 datapoints > 1.0")
    outcome = bake(
        canary, NAMES, [CANARY], seconds=60, poll=0.1, alarm_names=stage_alarm_names(canary, NAMES)
    )
    assert not outcome.promoted
    assert outcome.reason == f"alarm {ERRORS} is in ALARM: Threshold Crossed: 3 datapoints > 1.0"
    assert alias(aws) == ("1", {})


def test_an_alarm_during_the_bake_rolls_back_at_the_next_poll(canary: Aws, aws) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # the clock moves; the alarm fires after two polls
        slept.append(seconds)
        now[0] += seconds
        if len(slept) == 2:
            set_state(aws, ERRORS, "ALARM", "Threshold Crossed")

    outcome = bake(
        canary, NAMES, [CANARY], seconds=60, poll=5, clock=lambda: now[0], sleep=sleep,
        alarm_names=lambda: [ERRORS],
    )  # fmt: skip
    assert not outcome.promoted and outcome.alarm is not None and outcome.alarm.name == ERRORS
    assert slept == [5, 5] and alias(aws) == ("1", {})


def test_the_bake_polls_until_its_end_and_looks_once_more(canary: Aws, aws) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    outcome = bake(
        canary, NAMES, [CANARY], seconds=12, poll=5, clock=lambda: now[0], sleep=sleep,
        alarm_names=lambda: [ERRORS],
    )  # fmt: skip
    assert outcome.promoted and slept == [5, 5, 2]


def test_an_alias_moved_during_the_bake_is_left_alone(canary: Aws, aws) -> None:
    def sleep(_seconds: float) -> None:  # someone ends the canary by hand meanwhile
        client("lambda", aws).update_alias(
            FunctionName=ANALYZE, Name="live", FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {}},
        )  # fmt: skip

    outcome = bake(canary, NAMES, [CANARY], seconds=1, poll=5, sleep=sleep, alarm_names=list)
    assert outcome.promoted and outcome.moves == [] and outcome.skipped == [ANALYZE]
    assert alias(aws) == ("1", {})


def test_a_failure_while_watching_rolls_back_and_reraises(canary: Aws, aws) -> None:
    def sleep(_seconds: float) -> None:
        raise RuntimeError("the network went away")

    with pytest.raises(RuntimeError, match="network"):
        bake(canary, NAMES, [CANARY], seconds=30, poll=1, sleep=sleep, alarm_names=list)
    assert alias(aws) == ("1", {})


def test_an_alias_that_is_no_canary_is_refused(canary: Aws, aws) -> None:
    wrong = Release(ANALYZE, "analyze", previous="1", published="3", canary_weight=0.1)
    with pytest.raises(Exception, match="is not a canary of version 3 over 1"):
        bake(canary, NAMES, [wrong], seconds=0, alarm_names=list)
    assert alias(aws) == ("1", {"2": 0.1})
    with pytest.raises(ConfigError, match="--bake must be 0 seconds or more"):
        bake(canary, NAMES, [CANARY], seconds=float("nan"), alarm_names=list)
    first = Release(ANALYZE, "analyze", previous=None, published="1", canary_weight=None)
    assert bake(canary, NAMES, [first], seconds=0, alarm_names=list).moves == []


BAKE = textwrap.dedent(
    """
    import signal
    import sys
    # A test run started in the background by a non-interactive shell inherits SIGINT
    # ignored (and Python then keeps it ignored): give the bake the terminal's default.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from scarab.aws import Aws
    from scarab.naming import Names
    from scarab.release.bake import BakeInterrupted, Release, bake, stage_alarm_names

    aws = Aws("us-east-1")  # AWS_ENDPOINT_URL: the moto server
    names = Names("scarab", "test")
    release = Release("scarab-test-analyze", "analyze", "1", "2", 0.1)
    try:
        bake(aws, names, [release], seconds=600, poll=0.2,
             alarm_names=stage_alarm_names(aws, names), progress=lambda m: print(m, flush=True))
    except BakeInterrupted as exc:
        print("interrupted by", exc.signal_name, flush=True)
        sys.exit(130)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_bake_rolls_back_then_exits_130(canary: Aws, aws, sig) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", BAKE], stdout=subprocess.PIPE, text=True, env=dict(os.environ),
        cwd=Path(__file__).parent,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded by the 600 s bake; the line comes within seconds
            if line.startswith("baking"):
                break
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, rest
    assert f"interrupted by {sig.name}" in rest
    assert alias(aws) == ("1", {})


def test_bake_interrupted_is_a_keyboard_interrupt() -> None:
    # So that anything which does not know the bake still stops as on Ctrl-C.
    assert issubclass(BakeInterrupted, KeyboardInterrupt)
