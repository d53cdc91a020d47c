"""Review 6: the split layout's names collide with another stage's old-layout names.

Stage `<s>`'s analyze function is `<app>-<s>-analyze`, which is exactly the name the
single function of stage `<s>-analyze` had before the split (Names.legacy). Stage names
may contain dashes, so `test` and `test-analyze` are two legal stages of one app. Every
command that treats `names.legacy` as the stage's own (destroy's stage_functions, the
deploy preflight's owner check) now reaches into the neighbouring stage.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.deploy import deploy
from scarab.deploy.destroy import destroy

from tests.deploy.conftest import ANALYZE, ANALYZE_ROLE, client

pytestmark = pytest.mark.emulator


def test_destroying_stage_x_analyze_leaves_stage_x_analyze_function_alone(
    aws, project: Path, run_deploy
) -> None:
    """Destroying stage `test-analyze` deletes `scarab-test-analyze` (stage `test`'s
    analyze function), its log group and its role: read_doomed/plan_destroy take the
    legacy name `<app>-<stage>` of stage test-analyze as that stage's and never look at
    the scarab:stage tag. A destroy of one stage takes production down in another."""
    run_deploy()  # stage "test": scarab-test-analyze, scarab-test-models
    lam, iam, logs = client("lambda", aws), client("iam", aws), client("logs", aws)
    other = load_config(project, {"stage": "test-analyze"})
    plan = destroy(other, project_dir=project, endpoint_url=aws.url, dry_run=True)
    planned = [s.resource for s in plan.steps]
    assert f"lambda.function {ANALYZE}" not in planned, planned
    destroy(other, project_dir=project, endpoint_url=aws.url)
    # Stage "test" must be intact.
    assert lam.get_function_configuration(FunctionName=ANALYZE)["FunctionName"] == ANALYZE
    assert iam.get_role(RoleName=ANALYZE_ROLE)["Role"]["RoleName"] == ANALYZE_ROLE
    groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
    assert f"/aws/lambda/{ANALYZE}" in groups


def test_stage_x_analyze_can_be_deployed_next_to_stage_x(aws, project: Path, run_deploy) -> None:
    """With stage `test` deployed, deploying stage `test-analyze` is refused ("The
    function scarab-test-analyze belongs to app 'scarab', stage 'test'"): the preflight
    runs check_owner_tags on names.legacy of test-analyze, which is test's analyze
    function. The new stage's own names (scarab-test-analyze-analyze, ...) collide with
    nothing, so a legal stage name becomes undeployable once its prefix stage exists."""
    run_deploy()
    other = load_config(project, {"stage": "test-analyze"})
    result = deploy(other, project_dir=project, endpoint_url=aws.url)
    assert result.function_name == "scarab-test-analyze-analyze"
    lam = client("lambda", aws)
    tags = lam.list_tags(Resource=lam.get_function(FunctionName=ANALYZE)["Configuration"][
        "FunctionArn"])["Tags"]  # fmt: skip
    assert tags["scarab:stage"] == "test"


def test_status_of_a_stage_never_deployed_says_so(aws, project: Path, run_deploy) -> None:
    """`scarab status --stage test-analyze` (never deployed) reports stage test's analyze
    function as its own not-yet-migrated single function (functions.all, with drift
    against test-analyze's config) instead of 'Nothing is deployed for stage
    test-analyze': status.py reads names.legacy without checking its scarab:stage tag."""
    from scarab.errors import ScarabError
    from scarab.status import status

    run_deploy()
    other = load_config(project, {"stage": "test-analyze"})
    with pytest.raises(ScarabError, match="Nothing is deployed"):
        status(other, project_dir=project, endpoint_url=aws.url)
