"""Review 12 (adversarial): `scarab destroy --region` in a region where the stage does
not live must touch nothing of the live region's stage. An AWS Budgets budget is per
account, not per region, and destroy deleted `<app>-<stage>-monthly` from any region:
with the stage deployed in us-east-1, a `destroy` for us-west-2 (another machine, or a
lost record) removed the live stage's budget, which the IAM roles (global too) were
already kept for."""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.deploy.destroy import destroy
from scarab.deploy.state import state_path
from scarab.errors import ScarabError

from tests.deploy.conftest import client

pytestmark = pytest.mark.emulator

WATCH = """
[alarms]
email = "ops@example.com"

[budget]
monthly_usd = 25
"""


def _budgets(aws) -> list[str]:
    got = client("budgets", aws).describe_budgets(AccountId="123456789012")
    return [b["BudgetName"] for b in got.get("Budgets", [])]


def test_destroy_in_another_region_keeps_the_live_stages_budget(
    aws, project: Path, run_deploy
) -> None:
    path = project / "scarab.toml"
    path.write_text(path.read_text() + WATCH)
    run_deploy()  # the stage lives in us-east-1
    assert _budgets(aws) == ["scarab-test-monthly"]
    state_path(project.resolve(), "test", aws.url).unlink()  # another machine
    elsewhere = load_config(project, {"region": "us-west-2"})
    with pytest.raises(ScarabError, match="the budget scarab-test-monthly") as caught:
        destroy(elsewhere, project_dir=project, endpoint_url=aws.url)
    assert "destroy --region us-east-1" in str(caught.value)
    assert _budgets(aws) == ["scarab-test-monthly"]
    # In the stage's own region the budget goes with it.
    destroy(load_config(project), project_dir=project, endpoint_url=aws.url)
    assert _budgets(aws) == []
