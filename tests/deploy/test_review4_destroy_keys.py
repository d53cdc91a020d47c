"""Review 4: destroy deletes only what the stage owns.

A key scarab did not create (untagged, another name) that is also in someone else's usage
plan was put in the stage's plan by hand. Destroy deletes the key itself, breaking the
other API's clients, where taking it out of the stage's plan is all that is the stage's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.deploy.destroy import destroy

from tests.deploy.conftest import client


@pytest.mark.emulator
def test_destroy_keeps_a_key_another_usage_plan_uses(run_deploy, aws, project: Path) -> None:
    first, _ = run_deploy()
    apigw = client("apigateway", aws)
    other = apigw.create_usage_plan(name="partner-team-plan")
    key = apigw.create_api_key(name="partner-key", enabled=True)
    apigw.create_usage_plan_key(usagePlanId=other["id"], keyId=key["id"], keyType="API_KEY")
    apigw.create_usage_plan_key(usagePlanId=first.usage_plan_id, keyId=key["id"], keyType="API_KEY")
    destroy(load_config(project), project_dir=project, endpoint_url=aws.url)
    remaining = {k["id"] for k in apigw.get_api_keys()["items"]}
    assert remaining == {key["id"]}
    in_other = {k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=other["id"])["items"]}
    assert in_other == {key["id"]}
    assert [f["FunctionName"] for f in client("lambda", aws).list_functions()["Functions"]] == []
