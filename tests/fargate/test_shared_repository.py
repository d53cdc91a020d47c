"""The server image repository is shared by --target sagemaker and --target fargate:
destroying one target with --include-images keeps it while the other still runs."""

from __future__ import annotations

import pytest

from tests.fargate.conftest import Project

pytestmark = pytest.mark.emulator

REPO = "scarab-test-server"


def _repositories(p: Project) -> list[str]:
    got = p.client("ecr").describe_repositories()["repositories"]
    return [r["repositoryName"] for r in got]


def test_the_repository_outlives_the_first_of_two_targets(fargate_project: Project) -> None:
    p = fargate_project
    p.ok("deploy", "--target", "fargate")
    p.ok("deploy", "--target", "sagemaker")
    assert REPO in _repositories(p)

    first = p.cli("destroy", "--target", "sagemaker", "--yes", "--include-images")
    assert first.exit_code == 0, first.output
    assert f"kept ecr.repository {REPO} (--target fargate still runs its image" in first.output
    assert REPO in _repositories(p)
    assert p.client("sagemaker").list_endpoints()["Endpoints"] == []

    last = p.cli("destroy", "--target", "fargate", "--yes", "--include-images")
    assert last.exit_code == 0, last.output
    assert "kept ecr.repository" not in last.output
    assert REPO not in _repositories(p)


def test_and_the_other_way_round(fargate_project: Project) -> None:
    p = fargate_project
    p.ok("deploy", "--target", "sagemaker")
    p.ok("deploy", "--target", "fargate")
    first = p.cli("destroy", "--target", "fargate", "--yes", "--include-images")
    assert first.exit_code == 0, first.output
    assert f"kept ecr.repository {REPO} (--target sagemaker still runs its image" in first.output
    assert REPO in _repositories(p)
    last = p.cli("destroy", "--target", "sagemaker", "--yes", "--include-images")
    assert last.exit_code == 0, last.output
    assert REPO not in _repositories(p)
