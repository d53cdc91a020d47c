"""Review 13 (adversarial), the canary bake against the moto server:

- an alias someone moved during the bake (`scarab rollback`, `scarab split`) was moved
  again by the bake's roll back (after an alarm or Ctrl-C), and a split of the canary's
  own version at another weight was promoted: both now leave it as they set it and
  report it in `skipped`;
- a signal during the final promotion or roll back was swallowed (the command exited 0
  as if nothing came): it now raises BakeInterrupted once the move is complete, saying
  which move completed.

The stage is made with boto3 (a function with versions 1 and 2, `live` on 1 with 2 at
10%): the bake needs nothing else, and a deploy per test would cost seconds."""

from __future__ import annotations

import io
import json
import os
import signal
import zipfile
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from scarab.aws import Aws
from scarab.naming import Names
from scarab.release.bake import BakeInterrupted, Release, bake

from tests.deploy.conftest import ANALYZE, client
from tests.deploy.release_support import alias

pytestmark = pytest.mark.emulator

NAMES = Names("scarab", "test")
CANARY = Release(function=ANALYZE, key="analyze", previous="1", published="2", canary_weight=0.1)
ERRORS = "scarab-test-analyze-errors"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}  # fmt: skip


def _zip(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", f"V = {n}\n")
    return buf.getvalue()


@pytest.fixture
def stage(aws) -> None:
    role = client("iam", aws).create_role(
        RoleName="r13-role", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]["Arn"]
    lam = client("lambda", aws)
    lam.create_function(
        FunctionName=ANALYZE, Runtime="python3.12", Role=role, Handler="app.handler",
        Code={"ZipFile": _zip(1)},
    )  # fmt: skip
    lam.publish_version(FunctionName=ANALYZE)
    lam.update_function_code(FunctionName=ANALYZE, ZipFile=_zip(2))
    lam.publish_version(FunctionName=ANALYZE)
    lam.create_alias(
        FunctionName=ANALYZE, Name="live", FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )  # fmt: skip
    client("cloudwatch", aws).put_metric_alarm(
        AlarmName=ERRORS, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "FunctionName", "Value": ANALYZE}], TreatMissingData="notBreaching",
    )  # fmt: skip
    _alarm(aws, "OK")


def _alarm(aws: Any, state: str) -> None:
    client("cloudwatch", aws).set_alarm_state(
        AlarmName=ERRORS, StateValue=state, StateReason=f"test: {state}"
    )


def _set_alias(aws: Any, version: str, weights: dict[str, float]) -> None:
    client("lambda", aws).update_alias(
        FunctionName=ANALYZE, Name="live", FunctionVersion=version,
        RoutingConfig={"AdditionalVersionWeights": weights},
    )  # fmt: skip


def _run(aws: Any, sleep: Callable[[float], None], **kw: Any) -> Any:
    session = kw.pop("session", None) or boto3.Session(region_name="us-east-1")
    return bake(
        Aws("us-east-1", endpoint_url=aws.url, session=session), NAMES, [CANARY],
        seconds=kw.pop("seconds", 1), poll=5, sleep=sleep, alarm_names=lambda: [ERRORS], **kw,
    )  # fmt: skip


# --- 1: an alias moved during the bake is left as it is ----------------------------


def test_an_alarm_does_not_roll_back_an_alias_someone_moved(stage, aws) -> None:
    def sleep(_seconds: float) -> None:  # `scarab rollback --to 2` by hand, then errors
        _set_alias(aws, "2", {})
        _alarm(aws, "ALARM")

    outcome = _run(aws, sleep, seconds=60)
    assert not outcome.promoted and outcome.alarm is not None
    assert outcome.moves == [] and outcome.skipped == [ANALYZE]
    assert alias(aws) == ("2", {})


def test_ctrl_c_does_not_roll_back_an_alias_someone_moved(stage, aws) -> None:
    def sleep(_seconds: float) -> None:
        _set_alias(aws, "2", {})
        raise KeyboardInterrupt

    with pytest.raises(BakeInterrupted) as got:
        _run(aws, sleep, seconds=60)
    assert got.value.moves == [] and got.value.skipped == [ANALYZE]
    assert alias(aws) == ("2", {})


def test_a_split_of_the_canary_at_another_weight_is_not_promoted(stage, aws) -> None:
    outcome = _run(aws, lambda _s: _set_alias(aws, "1", {"2": 0.5}))  # `scarab split 2 50`
    assert outcome.moves == [] and outcome.skipped == [ANALYZE]
    assert alias(aws) == ("1", {"2": 0.5})


def test_an_interrupt_before_the_bake_rolls_back_only_untouched_canaries(stage, aws) -> None:
    from scarab.release.bake import roll_back  # (new with review 13: imported here)

    moves, skipped = roll_back(Aws("us-east-1", endpoint_url=aws.url), NAMES, [CANARY])
    assert [m.as_dict()["after"]["version"] for m in moves] == ["1"] and skipped == []
    assert alias(aws) == ("1", {})
    _set_alias(aws, "2", {})
    moves, skipped = roll_back(Aws("us-east-1", endpoint_url=aws.url), NAMES, [CANARY])
    assert moves == [] and skipped == [ANALYZE] and alias(aws) == ("2", {})


# --- 6: a signal during the final move is not lost ----------------------------------


def _signal_on_update_alias() -> boto3.Session:
    """A session that sends this process SIGINT as its UpdateAlias call goes out (once):
    the signal arrives while the bake moves the alias."""
    session = boto3.Session(region_name="us-east-1")
    sent: list[bool] = []

    def hook(model: Any, **_: Any) -> None:
        if model.name == "UpdateAlias" and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    session.events.register("before-call", hook)
    return session


def test_a_signal_during_the_promotion_is_reported_after_it_completes(stage, aws) -> None:
    with pytest.raises(BakeInterrupted) as got:
        _run(aws, lambda _s: None, session=_signal_on_update_alias())
    assert got.value.promoted and got.value.signal_name == "SIGINT"
    assert [m.as_dict()["after"]["version"] for m in got.value.moves] == ["2"]
    assert "the promotion completed" in got.value.what
    assert alias(aws) == ("2", {})  # the promotion was not cut half-way


def test_a_signal_during_the_alarms_roll_back_is_reported_after_it_completes(stage, aws) -> None:
    with pytest.raises(BakeInterrupted) as got:
        _run(aws, lambda _s: _alarm(aws, "ALARM"), seconds=60, session=_signal_on_update_alias())
    assert not got.value.promoted and ERRORS in got.value.reason
    assert "the roll back completed" in got.value.what
    assert alias(aws) == ("1", {})
