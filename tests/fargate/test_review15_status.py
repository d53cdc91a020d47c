"""Review of issue 15: `scarab status --target fargate` tells the port and the allowed
CIDR blocks the service has, not what scarab.toml says now. Before, editing [fargate]
port (not deployed yet) made status print every task's URL with the new port, and a
cleared allowed_cidrs said "open to nobody" while the group still admitted them."""

from __future__ import annotations

import json

import pytest

from tests.fargate.conftest import CONFIG, Project


@pytest.fixture(scope="module")
def deployed(fargate_project: Project) -> Project:
    fargate_project.ok("deploy", "--target", "fargate")
    return fargate_project


def test_status_reports_the_deployed_port_and_cidrs_not_the_edited_config(
    deployed: Project,
) -> None:
    edited = CONFIG.replace(
        'allowed_cidrs = ["203.0.113.0/24", "2001:db8::/32"]', "port = 9000\nallowed_cidrs = []"
    )
    assert edited != CONFIG
    deployed.set_config(edited)
    try:
        data = json.loads(deployed.ok("status", "--target", "fargate", "--json"))
        text = deployed.ok("status", "--target", "fargate")
    finally:
        deployed.set_config(CONFIG)
    assert data["port"] == 8080
    assert sorted(data["allowed_cidrs"]) == ["2001:db8::/32", "203.0.113.0/24"]
    assert "open to nobody" not in text
    assert "not deployed yet" in text and "9000" in text  # says the config differs
