"""The Function URL planner (deploy/planner_url.py), pure: the statement shapes real
Lambda stores (moto keeps another), and grants that are not scarab's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scarab.deploy.guards import extra_access
from scarab.deploy.models import URL_PERMISSION_SID, Desired, FunctionSpec
from scarab.deploy.planner_url import plan_url, public_url_statement
from scarab.deploy.reader import ObservedUnit

from tests.deploy.test_planner import desired, live_unit

TOML = """
[functions.models.url]
auth = "NONE"
[functions.models.url.cors]
allow_origins = ["https://dash.example.com"]
allow_headers = ["Content-Type"]
"""
# What GetPolicy answers on AWS for `add-permission --function-url-auth-type NONE
# --qualifier live` (the URL is the alias's).
AWS_STATEMENT = {
    "Sid": URL_PERMISSION_SID,
    "Effect": "Allow",
    "Principal": "*",
    "Action": "lambda:InvokeFunctionUrl",
    "Resource": "arn:aws:lambda:us-east-1:123456789012:function:scarab-dev-models:live",
    "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
}


def _setup(
    tmp_path: Path, policy_extra: list[dict[str, Any]]
) -> tuple[Desired, FunctionSpec, ObservedUnit]:
    (tmp_path / "scarab.toml").write_text(TOML)
    d = desired(tmp_path)
    fn = d.function("models")
    unit = live_unit(d, fn)
    assert unit.function is not None
    unit.function.alias_policy += policy_extra
    assert fn.url is not None
    # Lambda answers header names as it likes and fills in the keys left out.
    unit.function.alias_url = {
        "FunctionUrl": "https://abc.lambda-url.us-east-1.on.aws/",
        "AuthType": "NONE",
        "Cors": {"AllowOrigins": ["https://dash.example.com"], "AllowHeaders": ["content-type"],
                 "AllowMethods": ["*"], "MaxAge": 0},
    }  # fmt: skip
    return d, fn, unit


def test_the_aws_statement_shape_is_scarabs_and_up_to_date(tmp_path: Path) -> None:
    d, fn, unit = _setup(tmp_path, [AWS_STATEMENT])
    assert public_url_statement(AWS_STATEMENT)
    assert plan_url(d, fn, unit, recorded=True) == []
    found = extra_access(d.names, fn.names, None, unit.function, "us-east-1")
    assert found == []


def test_a_statement_under_scarabs_id_that_grants_more_is_replaced_and_reported(
    tmp_path: Path,
) -> None:
    wider = {**AWS_STATEMENT, "Action": "lambda:InvokeFunction", "Condition": {}}
    d, fn, unit = _setup(tmp_path, [wider])
    assert not public_url_statement(wider)
    [step] = plan_url(d, fn, unit, recorded=True)
    assert step.action == "create"
    ops = [getattr(i, "operation", None) for i in step.instructions]
    assert ops == ["RemovePermission", "AddPermission"]
    found = extra_access(d.names, fn.names, None, unit.function, "us-east-1")
    assert [f["kind"] for f in found] == ["public invoke permission"]
