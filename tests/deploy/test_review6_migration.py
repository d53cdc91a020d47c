"""Review 6: moving a single-function stage (deployed before the split) to its functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.deploy import deploy
from scarab.functions import ALL_ROUTES

from tests.deploy.conftest import ANALYZE, MODELS, client

pytestmark = pytest.mark.emulator

OLD = "scarab-test"


def env_of(lam: object, name: str) -> dict[str, str]:
    cfg = lam.get_function_configuration(FunctionName=name)  # type: ignore[attr-defined]
    return dict(cfg.get("Environment", {}).get("Variables", {}))


def test_a_variable_set_by_hand_on_the_old_function_survives_the_migration(
    aws, project: Path, run_deploy
) -> None:
    """scarab keeps variables it did not set (planner.merged_environment: someone's
    hand-set variable is never removed). The migration creates the new functions from
    the config alone and then deletes the old function, so a variable set by hand on
    `<app>-<stage>` (a feature flag, a proxy URL) silently disappears from the stage:
    no warning, no copy on the functions that now serve its routes."""
    config = load_config(project)
    deploy(config, project_dir=project, endpoint_url=aws.url, functions=(ALL_ROUTES,))
    lam = client("lambda", aws)
    env = env_of(lam, OLD)
    lam.update_function_configuration(
        FunctionName=OLD, Environment={"Variables": {**env, "HAND_SET": "keep-me"}}
    )
    result, _ = run_deploy()
    carried = all(env_of(lam, fn).get("HAND_SET") == "keep-me" for fn in (ANALYZE, MODELS))
    warned = any("HAND_SET" in w for w in result.warnings)
    assert carried or warned, (env_of(lam, ANALYZE), result.warnings)


def test_a_policy_granted_by_hand_on_the_old_role_is_not_silently_deleted(
    aws, project: Path, run_deploy
) -> None:
    """scarab never removes grants it did not make: it lists them ('unmanaged_access',
    guards.extra_access) with the command that would remove them, and the user decides.
    planner.plan_retire deletes every inline policy (and detaches every managed policy)
    of the old role `<app>-<stage>-role` before DeleteRole, the user's own included. An
    inline policy document is gone for good, the stage's functions lose the access the
    user gave it (an S3 bucket the function reads), and the deploy says nothing."""
    config = load_config(project)
    deploy(config, project_dir=project, endpoint_url=aws.url, functions=(ALL_ROUTES,))
    iam = client("iam", aws)
    mine = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    iam.put_role_policy(
        RoleName=f"{OLD}-role", PolicyName="my-bucket-read", PolicyDocument=json.dumps(mine)
    )
    result, _ = run_deploy()
    roles = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    on_old = (
        iam.list_role_policies(RoleName=f"{OLD}-role")["PolicyNames"]
        if f"{OLD}-role" in roles
        else []
    )
    kept = "my-bucket-read" in on_old
    warned = any("my-bucket-read" in w for w in result.warnings)
    assert kept or warned, ([s.describe() for s in result.plan], result.warnings)


def test_an_untagged_old_function_is_not_left_without_its_role(
    aws, project: Path, run_deploy
) -> None:
    """An untagged function of the stage's name counts as the stage's everywhere else
    (guards.check_owner_tags: 'untagged (adopted by name, as recovery from a lost record
    does)'). plan_retire asks _ours() of the function and of the role separately: an
    untagged old function is kept while its (tagged) role is deleted, leaving a function
    that cannot run and that no later deploy cleans up (the plan is empty from then on)."""
    config = load_config(project)
    deploy(config, project_dir=project, endpoint_url=aws.url, functions=(ALL_ROUTES,))
    lam, iam = client("lambda", aws), client("iam", aws)
    arn = lam.get_function_configuration(FunctionName=OLD)["FunctionArn"]
    lam.untag_resource(Resource=arn, TagKeys=["scarab:app", "scarab:stage"])
    run_deploy()
    functions = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    roles = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert not (OLD in functions and f"{OLD}-role" not in roles), (functions, roles)


def test_scarab_logs_reads_a_stage_not_yet_migrated(aws, project: Path) -> None:
    """After upgrading scarab, a stage deployed by the previous version still runs its
    one function `<app>-<stage>` until the next deploy; `scarab logs` (default
    --function analyze) then fails with 'No log group /aws/lambda/<app>-<stage>-analyze;
    deploy the stage first', and `--function all` is refused, although status lists that
    function under `all`. The old log group is also kept after the migration "so no log
    line is lost", yet no `scarab logs` invocation can read it."""
    from scarab.errors import ScarabError
    from scarab.logs import tail

    config = load_config(project)
    deploy(config, project_dir=project, endpoint_url=aws.url, functions=(ALL_ROUTES,))
    logs = client("logs", aws)
    group = f"/aws/lambda/{OLD}"
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    import time

    logs.put_log_events(
        logGroupName=group, logStreamName="s",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "old-layout line"}],
    )  # fmt: skip
    lines: list[str] = []
    for function in ("analyze", "all"):
        try:
            lines += list(tail(config, project_dir=project, since="1h", endpoint_url=aws.url,
                               function=function))  # fmt: skip
        except ScarabError:
            continue
    assert any("old-layout line" in line for line in lines), lines


def test_status_of_a_stage_not_yet_migrated_lists_grants_on_its_role(aws, project: Path) -> None:
    """Status lists grants scarab did not make ('unmanaged_access'), and main's status
    listed them on `<app>-<stage>-role`. On a stage not yet migrated, status now reads
    extra_access only for the analyze and models functions (which do not exist yet), so
    the user's policy on the running function's role is not shown, and the next deploy
    deletes it (see the test above): the one warning that existed is gone."""
    from scarab.status import status

    config = load_config(project)
    deploy(config, project_dir=project, endpoint_url=aws.url, functions=(ALL_ROUTES,))
    iam = client("iam", aws)
    mine = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    iam.put_role_policy(
        RoleName=f"{OLD}-role", PolicyName="my-bucket-read", PolicyDocument=json.dumps(mine)
    )
    data = status(config, project_dir=project, endpoint_url=aws.url)
    assert "my-bucket-read" in [i["name"] for i in data["unmanaged_access"]], data[
        "unmanaged_access"
    ]


def test_status_top_level_function_of_a_stage_not_yet_migrated_is_the_running_one(
    aws, project: Path
) -> None:
    """status keeps top-level function_name/function_arn/log_group 'as earlier scarab
    versions reported' for scripts (`status --json | jq .function_arn`). On a stage not
    yet migrated they name scarab-test-analyze, which does not exist (function_arn null,
    function_state null), while scarab-test serves every route."""
    from scarab.status import status

    config = load_config(project)
    deploy(config, project_dir=project, endpoint_url=aws.url, functions=(ALL_ROUTES,))
    data = status(config, project_dir=project, endpoint_url=aws.url)
    assert data["function_arn"] is not None, (data["function_name"], data["functions"].keys())
    assert data["function_name"] == OLD
