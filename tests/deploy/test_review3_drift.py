"""Review 3 (adversarial): drift that widens access outside scarab's own names survives a
redeploy that then calls the stage up to date, and `scarab status` reports no drift.
Fails on today's main.

scarab does not delete what it did not create (it may be the user's on purpose): the
redeploy warns, and `scarab status` lists each grant with the command that removes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.deploy.conftest import client
from tests.support.serve_process import scarab_cli

pytestmark = pytest.mark.emulator

WIDE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@pytest.mark.managed_policies  # attaches an AWS managed policy
def test_a_widened_role_or_public_permission_is_repaired_or_reported(
    run_deploy, aws, project: Path
) -> None:
    run_deploy()
    iam, lam = client("iam", aws), client("lambda", aws)
    iam.put_role_policy(
        RoleName="scarab-test-analyze-role", PolicyName="backdoor", PolicyDocument=json.dumps(WIDE)
    )
    iam.attach_role_policy(
        RoleName="scarab-test-analyze-role", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
    )
    lam.add_permission(
        FunctionName="scarab-test-analyze",
        StatementId="anyone",
        Action="lambda:InvokeFunction",
        Principal="*",
    )
    deployed = scarab_cli(project, "deploy", check=True)
    inline = set(iam.list_role_policies(RoleName="scarab-test-analyze-role")["PolicyNames"])
    attached = iam.list_attached_role_policies(RoleName="scarab-test-analyze-role")[
        "AttachedPolicies"
    ]
    sids = {
        s["Sid"]
        for s in json.loads(lam.get_policy(FunctionName="scarab-test-analyze")["Policy"])[
            "Statement"
        ]
    }
    # Left in place (the user's to remove) ...
    assert "backdoor" in inline and "anyone" in sids and attached
    # ... but reported: by the deploy, and by status (text and JSON) with the fix.
    for word in ("backdoor", "AdministratorAccess", "anyone"):
        assert word in deployed.stderr, deployed.stderr
    data = json.loads(scarab_cli(project, "status", "--json", check=True).stdout)
    found = {(i["kind"], i["name"]): i for i in data["unmanaged_access"]}
    assert set(found) == {
        ("inline role policy", "backdoor"),
        ("attached role policy", "AdministratorAccess"),
        ("public invoke permission", "anyone"),
    }, found
    assert "delete-role-policy" in found["inline role policy", "backdoor"]["remove"]
    text = scarab_cli(project, "status", check=True).stdout
    assert "access scarab did not grant" in text and "remove-permission" in text, text
