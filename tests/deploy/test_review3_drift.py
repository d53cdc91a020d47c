"""Review 3 (adversarial): drift that widens access outside scarab's own names survives a
redeploy that then calls the stage up to date, and `scarab status` reports no drift.
Fails on today's main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.deploy.conftest import client
from tests.support.serve_process import scarab_cli

pytestmark = pytest.mark.emulator

WIDE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def test_a_widened_role_or_public_permission_is_repaired_or_reported(
    run_deploy, aws, project: Path
) -> None:
    run_deploy()
    iam, lam = client("iam", aws), client("lambda", aws)
    iam.put_role_policy(
        RoleName="scarab-test-role", PolicyName="backdoor", PolicyDocument=json.dumps(WIDE)
    )
    iam.attach_role_policy(
        RoleName="scarab-test-role", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
    )
    lam.add_permission(
        FunctionName="scarab-test",
        StatementId="anyone",
        Action="lambda:InvokeFunction",
        Principal="*",
    )
    scarab_cli(project, "deploy", check=True)
    inline = set(iam.list_role_policies(RoleName="scarab-test-role")["PolicyNames"])
    attached = iam.list_attached_role_policies(RoleName="scarab-test-role")["AttachedPolicies"]
    sids = {
        s["Sid"]
        for s in json.loads(lam.get_policy(FunctionName="scarab-test")["Policy"])["Statement"]
    }
    repaired = (
        inline == {"scarab-write-logs", "scarab-read-secret"}
        and attached == []
        and sids == {"scarab-apigateway-invoke"}
    )
    status = scarab_cli(project, "status", "--json", check=True).stdout
    reported = all(word in status for word in ("backdoor", "AdministratorAccess", "anyone"))
    assert repaired or reported, (
        f"left in place and unreported: inline {sorted(inline)}, attached"
        f" {[p['PolicyName'] for p in attached]}, permissions {sorted(sids)}"
    )
