"""Failure injection: every mutating call of a first deploy fails once, in turn; a
re-run must converge with no duplicate APIs, usage plans, keys or permissions."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.exceptions
import pytest
from scarab.aws import Aws
from scarab.config import load_config
from scarab.deploy import deploy
from scarab.errors import ScarabError

from tests.deploy.conftest import Recorder, client, counted_session

pytestmark = pytest.mark.emulator


def _aws(recorder: Recorder, url: str) -> Aws:
    return Aws("us-east-1", endpoint_url=url, session=counted_session(recorder))


def assert_single_stack(moto, stage: str) -> None:
    apigw, lam = client("apigateway", moto), client("lambda", moto)
    name = f"scarab-{stage}"
    apis = [a for a in apigw.get_rest_apis(limit=500)["items"] if a["name"] == name]
    assert len(apis) == 1, f"{len(apis)} APIs named {name}"
    plans = [p for p in apigw.get_usage_plans(limit=500)["items"] if p["name"] == f"{name}-plan"]
    assert len(plans) == 1, f"{len(plans)} usage plans"
    assert plans[0]["apiStages"] == [{"apiId": apis[0]["id"], "stage": stage}]
    keys = [
        k for k in apigw.get_api_keys(limit=500)["items"] if k["name"].startswith(f"{name}-key-")
    ]
    assert [k["name"] for k in keys] == [f"{name}-key-1"], "duplicate keys"
    in_plan = apigw.get_usage_plan_keys(usagePlanId=plans[0]["id"])["items"]
    assert [k["id"] for k in in_plan] == [keys[0]["id"]]
    for function in (f"{name}-analyze", f"{name}-models"):
        policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
        assert len(policy["Statement"]) == 1, "duplicate permissions"
        assert policy["Statement"][0]["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(
            f":{apis[0]['id']}/{stage}/*/*"
        )


def failure_points(calls: list[str]) -> list[int]:
    """The 1-based positions to fail at: the first call of each operation, and the last
    call. Every kind of step fails once; a later occurrence of an operation fails after
    every earlier resource exists, which each later point already covers (the re-run must
    find them all). The suite stays minutes, not tens."""
    points: list[int] = []
    seen: set[str] = set()
    for i, op in enumerate(calls, 1):
        if op not in seen:
            seen.add(op)
            points.append(i)
    if len(calls) not in points:
        points.append(len(calls))
    return points


@pytest.mark.slow
@pytest.mark.timeout(900)  # ~100 deploys: 95 s here, minutes on a loaded machine
def test_each_kind_of_mutating_call_failing_once_still_converges(aws, project: Path) -> None:
    probe = Recorder()
    deploy(load_config(project, {"stage": "probe"}), project_dir=project, aws=_aws(probe, aws.url))
    total = len(probe.mutating)
    assert total > 30
    # The stage lock is taken first and released last (deploy/lock.py).
    assert probe.mutating[0] == "ssm.PutParameter" and probe.mutating[-1] == "ssm.DeleteParameter"
    points = failure_points(probe.mutating)
    assert {probe.mutating[n - 1] for n in points} == set(probe.mutating)
    for n in points:
        stage = f"f{n}"
        config = load_config(project, {"stage": stage})
        recorder = Recorder(fail_at=n)
        session_aws = _aws(recorder, aws.url)
        if n == total:
            # A failed release is retried once: the deploy succeeds, no lock is left.
            assert not deploy(config, project_dir=project, aws=session_aws).up_to_date
            ssm = client("ssm", aws)
            assert ssm.get_parameters(Names=[f"/scarab/scarab/{stage}/lock"])["Parameters"] == []
            assert_single_stack(aws, stage)
            continue
        with pytest.raises(ScarabError) as info:
            deploy(config, project_dir=project, aws=session_aws)
        assert "injected by the test" in str(info.value)
        assert "run the same command again" in str(info.value)
        recorder.fail_at = None
        result = deploy(config, project_dir=project, aws=session_aws)
        assert not result.up_to_date, f"N={n}: the re-run had nothing to do"
        before = len(recorder.mutating)
        again = deploy(config, project_dir=project, aws=session_aws)
        assert again.up_to_date and len(recorder.mutating) == before, (
            f"N={n}: not converged: {[s.describe() for s in again.plan]}"
        )
        assert_single_stack(aws, stage)


def test_update_in_progress_is_waited_out(run_deploy, aws, project: Path) -> None:
    run_deploy()
    (project / "scarab.toml").write_text(
        (project / "scarab.toml").read_text().replace("memory = 512", "memory = 640")
    )
    conflicts = {"left": 2}

    def conflict(model, **_):
        if model.name == "UpdateFunctionConfiguration" and conflicts["left"]:
            conflicts["left"] -= 1
            raise botocore.exceptions.ClientError(
                {
                    "Error": {
                        "Code": "ResourceConflictException",
                        "Message": "An update is in progress for resource",
                    }
                },
                model.name,
            )

    recorder = Recorder()
    session = counted_session(recorder)
    session.events.register("before-call", conflict)
    result = deploy(
        load_config(project), project_dir=project, endpoint_url=aws.url, session=session
    )
    assert conflicts["left"] == 0
    assert [s.resource for s in result.plan] == [
        "lambda.function scarab-test-analyze configuration",
        "lambda.version scarab-test-analyze",
        "lambda.alias scarab-test-analyze:live",
        "lambda.function scarab-test-models configuration",
        "lambda.version scarab-test-models",
        "lambda.alias scarab-test-models:live",
    ]
    for name in ("scarab-test-analyze", "scarab-test-models"):
        cfg = client("lambda", aws).get_function_configuration(FunctionName=name)
        assert cfg["MemorySize"] == 640


def test_access_denied_names_the_missing_permission(aws, project: Path) -> None:
    def deny(model, **_):
        if model.name == "CreateRole":
            raise botocore.exceptions.ClientError(
                {
                    "Error": {
                        "Code": "AccessDenied",
                        "Message": "User: arn:aws:iam::123456789012:user/dev is not"
                        " authorized to perform: iam:CreateRole",
                    }
                },
                model.name,
            )

    recorder = Recorder()
    session = counted_session(recorder)
    session.events.register("before-call", deny)
    with pytest.raises(ScarabError) as info:
        deploy(load_config(project), project_dir=project, endpoint_url=aws.url, session=session)
    msg = str(info.value)
    assert "iam:CreateRole" in msg and "AccessDenied" in msg and "Grant" in msg


def test_no_credentials_reads_as_advice(project: Path, monkeypatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(project / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(project / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ScarabError, match="No AWS credentials found"):
        deploy(load_config(project), project_dir=project, endpoint_url="http://127.0.0.1:9")


def test_wrong_region_reads_as_advice(project: Path, monkeypatch) -> None:
    from scarab.deploy.state import StageState, save_state

    # The real-AWS record (no endpoint: any explicit endpoint is an emulator's, kept apart);
    # refused before any AWS call.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    save_state(project, StageState(app="scarab", stage="test", region="eu-west-1"))
    config = load_config(project, {"region": "us-west-2"})
    with pytest.raises(ScarabError, match=r"deployed in eu-west-1.*--region eu-west-1"):
        deploy(config, project_dir=project)
