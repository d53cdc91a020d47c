"""[functions.<name>.vpc] deployed against the moto server (with subnets and security
groups made in its EC2 first): the function's VpcConfig is set on create and update and
emptied when the section goes; its role gets exactly the network-interface policy, which
goes too, after the function left the VPC; plans carry VpcConfig as values; a wrong id
is a config error before anything changes; export writes VpcConfig."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scarab.config import load_config
from scarab.errors import ConfigError
from scarab.status import status

from tests.deploy.conftest import (
    ANALYZE,
    ANALYZE_ROLE,
    CONFIG,
    MODELS,
    MODELS_ROLE,
    client,
    inline_policies,
)
from tests.deploy.test_export import export, lint_matches
from tests.deploy.test_permissions import README, iam_actions, readme_actions
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator

VPC_POLICY = "scarab-vpc-network-interfaces"
# What Lambda needs for a VPC function's interfaces: AWSLambdaVPCAccessExecutionRole's
# EC2 actions, written out in full (Resource "*": EC2 scopes these no narrower).
EXPECTED_VPC_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ManageVpcNetworkInterfaces",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSubnets",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Resource": "*",
        }
    ],
}


def network(aws: MotoServer, cidr: str = "10.20.0.0/16") -> tuple[list[str], list[str]]:
    """A VPC in the moto server with two subnets and two security groups: their ids."""
    ec2 = client("ec2", aws)
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    prefix = cidr.rsplit(".", 2)[0]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"{prefix}.{i}.0/24")["Subnet"]["SubnetId"]
        for i in (1, 2)
    ]
    groups = [
        ec2.create_security_group(VpcId=vpc, GroupName=f"db-{n}-{vpc}", Description="db")["GroupId"]
        for n in (1, 2)
    ]
    return subnets, groups


def vpc_section(subnets: list[str], groups: list[str], function: str = "analyze") -> str:
    return (
        f"\n[functions.{function}.vpc]\nsubnet_ids = {json.dumps(subnets)}\n"
        f"security_group_ids = {json.dumps(groups)}\n"
    )


def configure(project: Path, extra: str) -> None:
    (project / "scarab.toml").write_text(CONFIG + extra)


def live_vpc(aws: MotoServer, function: str) -> tuple[list[str], list[str]]:
    cfg = client("lambda", aws).get_function_configuration(FunctionName=function)
    vpc = cfg.get("VpcConfig") or {}
    return sorted(vpc.get("SubnetIds") or []), sorted(vpc.get("SecurityGroupIds") or [])


def calls_of(plan: list[Any], operation: str) -> list[dict[str, Any]]:
    """The parameters of every `operation` call in a plan (its steps' values)."""
    return [c.params for s in plan for c in s.calls if c.operation == operation]


def assert_in_readme(recorders: list[Any]) -> None:
    listed = readme_actions(README.read_text())
    used = {
        a for r in recorders for model, params in r.requests for a in iam_actions(model, params)
    }
    assert used - listed == set(), sorted(used - listed)


def test_a_function_joins_moves_and_leaves_its_vpc(
    run_deploy: Any, aws: MotoServer, project: Path
) -> None:
    subnets, groups = network(aws)
    configure(project, vpc_section(subnets, groups[:1]))
    recorders = []

    # A dry run (scarab plan): the create carries VpcConfig as a value; nothing changes.
    planned, rec = run_deploy(dry_run=True)
    recorders.append(rec)
    assert rec.mutating == []
    creates = {p["FunctionName"]: p for p in calls_of(planned.plan, "CreateFunction")}
    create, models_create = creates[ANALYZE], creates[MODELS]
    assert create["VpcConfig"] == {"SubnetIds": sorted(subnets), "SecurityGroupIds": groups[:1]}
    assert "VpcConfig" not in models_create

    result, rec = run_deploy()
    recorders.append(rec)
    assert live_vpc(aws, ANALYZE) == (sorted(subnets), groups[:1])
    assert live_vpc(aws, MODELS) == ([], [])
    iam = client("iam", aws)
    assert inline_policies(iam, ANALYZE_ROLE)[VPC_POLICY] == EXPECTED_VPC_POLICY
    assert VPC_POLICY not in inline_policies(iam, MODELS_ROLE)
    # The policy is put before the function is created (Lambda checks the role has it).
    order = rec.calls
    assert order.index("iam.PutRolePolicy") < order.index("lambda.CreateFunction")
    # scarab's own: status does not report it as a grant someone else made.
    config = load_config(project)
    live = status(config, project_dir=project, endpoint_url=aws.url)
    assert live["unmanaged_access"] == [], live["unmanaged_access"]
    assert [d for d in live["drift"] if d["field"] == "vpc"] == []
    # Moved by hand to the other security group: status shows it as drift.
    client("lambda", aws).update_function_configuration(
        FunctionName=ANALYZE, VpcConfig={"SubnetIds": subnets, "SecurityGroupIds": groups[1:]}
    )
    drift = status(config, project_dir=project, endpoint_url=aws.url)["drift"]
    assert [d for d in drift if d["field"] == "vpc"] == [
        {
            "field": "vpc",
            "function": "analyze",
            "live": {"subnet_ids": sorted(subnets), "security_group_ids": groups[1:]},
            "config": {"subnet_ids": sorted(subnets), "security_group_ids": groups[:1]},
        }
    ]
    configure(project, vpc_section(subnets, groups[:1]))  # and the next deploy repairs it
    assert VPC_POLICY not in json.dumps(result.warnings)

    repaired, rec = run_deploy()
    recorders.append(rec)
    assert calls_of(repaired.plan, "UpdateFunctionConfiguration")[0]["VpcConfig"] == {
        "SubnetIds": sorted(subnets), "SecurityGroupIds": groups[:1],
    }  # fmt: skip
    assert live_vpc(aws, ANALYZE) == (sorted(subnets), groups[:1])
    again, rec = run_deploy()
    recorders.append(rec)
    assert again.up_to_date and rec.mutating == [c for c in rec.mutating if c.startswith("ssm.")]

    # Another security group, the subnets listed in another order: only the groups move.
    configure(project, vpc_section(subnets[::-1], groups[::-1]))
    moved, rec = run_deploy()
    recorders.append(rec)
    (update,) = calls_of(moved.plan, "UpdateFunctionConfiguration")
    assert update["FunctionName"] == ANALYZE
    assert update["VpcConfig"] == {"SubnetIds": sorted(subnets), "SecurityGroupIds": sorted(groups)}
    assert live_vpc(aws, ANALYZE) == (sorted(subnets), sorted(groups))

    # The section removed: the function is detached (empty lists), then the policy goes.
    configure(project, "")
    left, rec = run_deploy()
    recorders.append(rec)
    (update,) = calls_of(left.plan, "UpdateFunctionConfiguration")
    assert update["VpcConfig"] == {"SubnetIds": [], "SecurityGroupIds": []}
    assert live_vpc(aws, ANALYZE) == ([], [])
    assert VPC_POLICY not in inline_policies(iam, ANALYZE_ROLE)
    order = rec.calls
    last_update = max(i for i, c in enumerate(order) if c == "lambda.UpdateFunctionConfiguration")
    assert order.index("iam.DeleteRolePolicy") > last_update, order
    final, rec = run_deploy()
    recorders.append(rec)
    assert final.up_to_date
    assert_in_readme(recorders)


def test_missing_or_mixed_ids_stop_the_deploy_before_any_change(
    run_deploy: Any, aws: MotoServer, project: Path
) -> None:
    subnets, groups = network(aws, "10.30.0.0/16")
    other_subnets, other_groups = network(aws, "10.40.0.0/16")
    gone = "subnet-0123456789abcdef0"
    configure(project, vpc_section([subnets[0], gone], groups[:1], "models"))
    with pytest.raises(ConfigError) as info:
        run_deploy()
    message = str(info.value)
    assert "[functions.models.vpc]" in message and gone in message and subnets[0] not in message
    assert "does not exist" in message

    configure(project, vpc_section(subnets[:1], ["sg-0123456789abcdef0"], "models"))
    with pytest.raises(ConfigError, match="security_group_ids names sg-0123456789abcdef0"):
        run_deploy()

    configure(project, vpc_section(subnets[:1], other_groups[:1], "models"))
    with pytest.raises(ConfigError, match="must all be in one VPC"):
        run_deploy()
    # Nothing was created by any of them.
    lam = client("lambda", aws)
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == []
    assert other_subnets  # made only for the other VPC's groups


def test_export_writes_the_vpc_and_its_policy(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subnets = ["subnet-0123456789abcdef0"]
    groups = ["sg-0123456789abcdef0"]
    configure(project, vpc_section(subnets, groups))
    for fmt in ("cloudformation", "sam"):
        template = json.loads(export(project, monkeypatch, "--format", fmt))
        resources = template["Resources"]
        fns = {
            r["Properties"]["FunctionName"]: (lid, r)
            for lid, r in resources.items()
            if r["Type"] in ("AWS::Lambda::Function", "AWS::Serverless::Function")
        }
        _, analyze = fns[ANALYZE]
        assert analyze["Properties"]["VpcConfig"] == {
            "SubnetIds": subnets, "SecurityGroupIds": groups,
        }  # fmt: skip
        assert "VpcConfig" not in fns[MODELS][1]["Properties"]
        policies = {
            r["Properties"]["PolicyName"]: (pid, r["Properties"]["PolicyDocument"])
            for pid, r in resources.items()
            if r["Type"] == "AWS::IAM::RolePolicy"
        }
        pid, doc = policies[VPC_POLICY]
        assert doc == EXPECTED_VPC_POLICY
        assert pid in analyze["DependsOn"]
        if fmt == "cloudformation":
            assert lint_matches(template)["E"] == []


def test_the_interface_grant_is_waited_for(aws: MotoServer, project: Path) -> None:
    """Lambda refuses a VPC function until IAM propagated the role's ENI policy: the
    create is retried on that answer (injected once through botocore's event hook)."""
    import botocore.exceptions
    from scarab.deploy import deploy

    from tests.deploy.conftest import Recorder, counted_session

    subnets, groups = network(aws, "10.50.0.0/16")
    configure(project, vpc_section(subnets[:1], groups[:1]))
    left = {"n": 1}

    def not_yet(model: Any, **_: Any) -> None:
        if model.name == "CreateFunction" and left["n"]:
            left["n"] -= 1
            message = (
                "The provided execution role does not have permissions to call"
                " CreateNetworkInterface on EC2"
            )
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "InvalidParameterValueException", "Message": message}},
                model.name,
            )

    recorder = Recorder()
    session = counted_session(recorder)
    session.events.register("before-call", not_yet)
    deploy(load_config(project), project_dir=project, endpoint_url=aws.url, session=session)
    assert left["n"] == 0
    assert recorder.calls.count("lambda.CreateFunction") == 3  # two functions, one retried
    assert live_vpc(aws, ANALYZE) == (subnets[:1], groups[:1])
