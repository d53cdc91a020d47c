"""[functions.<name>.url] deployed against the moto server: the Function URL and its
public permission are created, kept, updated on drift and removed with the section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scarab.config import load_config
from scarab.deploy.destroy import destroy
from scarab.deploy.models import URL_PERMISSION_SID
from scarab.deploy.state import load_state
from scarab.status import status

from tests.deploy.conftest import CONFIG, MODELS, client, permission

pytestmark = pytest.mark.emulator

PUBLIC = """
[functions.models.url]
auth = "NONE"
[functions.models.url.cors]
allow_origins = ["https://dash.example.com", "http://localhost:3000"]
allow_methods = ["GET", "POST"]
allow_headers = ["content-type"]
max_age = 300
"""


def configure(project: Path, extra: str) -> None:
    (project / "scarab.toml").write_text(CONFIG + extra)


def url_config(aws: Any, qualifier: str | None = "live") -> dict[str, Any]:
    """The models function's Function URL: the `live` alias's, where scarab makes it
    (moto keeps one URL per function and ignores the qualifier)."""
    alias = {"Qualifier": qualifier} if qualifier else {}
    return dict(client("lambda", aws).get_function_url_config(FunctionName=MODELS, **alias))


def changes(recorder: Any) -> list[str]:
    """The mutating calls of a run, the stage lock's (SSM) left out, sorted."""
    return sorted(c for c in recorder.mutating if not c.startswith("ssm."))


def url_statements(aws: Any) -> list[dict[str, Any]]:
    return [s for s in permission(client("lambda", aws), MODELS) if s["Sid"] == URL_PERMISSION_SID]


def test_a_public_url_is_created_recorded_and_reported(run_deploy, aws, project: Path) -> None:
    configure(project, PUBLIC)
    result, _ = run_deploy()
    live = url_config(aws)
    assert live["AuthType"] == "NONE"
    assert live["Cors"]["AllowOrigins"] == ["https://dash.example.com", "http://localhost:3000"]
    assert live["Cors"]["AllowMethods"] == ["GET", "POST"]
    assert live["Cors"]["MaxAge"] == 300
    url = live["FunctionUrl"]
    assert result.functions["models"]["url"] == url
    assert result.functions["analyze"]["url"] is None
    # Anyone may invoke it through the URL (auth NONE), and nothing more.
    [stmt] = url_statements(aws)
    assert stmt["Action"] == "lambda:InvokeFunctionUrl"
    assert stmt["Principal"] in ("*", {"AWS": "*"})
    # The grant is scarab's: not reported as foreign access.
    assert not [w for w in result.warnings if URL_PERMISSION_SID in w]
    state = load_state(project, "test", aws.url)
    assert state.functions["models"].get("url") == url
    assert "url" not in state.functions["analyze"]
    config = load_config(project)
    shown = status(config, project_dir=project, endpoint_url=aws.url)
    assert shown["functions"]["models"]["url"] == url
    assert shown["functions"]["analyze"]["url"] is None
    assert not [u for u in shown["unmanaged_access"] if u["name"] == URL_PERMISSION_SID]
    # The URL's CORS answers an origin the function answers too (localhost:3000 is in
    # [function] allowed_origins): warned, naming the origin, with advice.
    [double] = [w for w in result.warnings if "Access-Control-Allow-Origin" in w]
    assert "http://localhost:3000" in double and "dash.example.com" not in double
    assert "Remove [functions.models.url.cors]" in double


def test_cors_for_other_origins_than_the_functions_is_not_warned(
    run_deploy, aws, project: Path
) -> None:
    configure(project, PUBLIC.replace(', "http://localhost:3000"', ""))
    result, _ = run_deploy()
    assert url_config(aws)["Cors"]["AllowOrigins"] == ["https://dash.example.com"]
    assert not [w for w in result.warnings if "Access-Control-Allow-Origin" in w]


def test_a_rerun_changes_nothing(run_deploy, aws, project: Path) -> None:
    configure(project, PUBLIC)
    first, _ = run_deploy()
    again, recorder = run_deploy()
    assert again.up_to_date and recorder.mutating == []
    assert "lambda.GetFunctionUrlConfig" in recorder.calls
    assert again.functions["models"]["url"] == first.functions["models"]["url"]


def test_a_cors_change_updates_the_url_in_place(run_deploy, aws, project: Path) -> None:
    configure(project, PUBLIC)
    first, _ = run_deploy()
    configure(project, PUBLIC.replace("max_age = 300", "max_age = 600"))
    result, recorder = run_deploy()
    assert changes(recorder) == ["lambda.UpdateFunctionUrlConfig"]
    [step] = result.plan
    assert step.resource == f"lambda.url {MODELS}:live" and step.action == "update"
    assert url_config(aws)["Cors"]["MaxAge"] == 600
    assert result.functions["models"]["url"] == first.functions["models"]["url"]


def test_iam_auth_has_no_public_grant_and_switching_removes_it(
    run_deploy, aws, project: Path
) -> None:
    configure(project, PUBLIC)
    run_deploy()
    configure(project, '\n[functions.models.url]\nauth = "AWS_IAM"\n')
    result, recorder = run_deploy()
    assert url_config(aws)["AuthType"] == "AWS_IAM"
    assert url_statements(aws) == []
    assert changes(recorder) == [
        "lambda.RemovePermission",
        "lambda.UpdateFunctionUrlConfig",
    ]
    # No CORS table: no warning about two CORS answers.
    assert not [w for w in result.warnings if "Access-Control-Allow-Origin" in w]


def test_removing_the_section_deletes_the_url_and_its_permission(
    run_deploy, aws, project: Path
) -> None:
    configure(project, PUBLIC)
    run_deploy()
    configure(project, "")
    result, recorder = run_deploy()
    assert changes(recorder) == ["lambda.DeleteFunctionUrlConfig", "lambda.RemovePermission"]
    assert all(s.action == "delete" for s in result.plan)
    with pytest.raises(client("lambda", aws).exceptions.ResourceNotFoundException):
        url_config(aws)
    assert url_statements(aws) == []
    assert result.functions["models"]["url"] is None
    assert "url" not in load_state(project, "test", aws.url).functions["models"]
    again, recorder = run_deploy()
    assert again.up_to_date and recorder.mutating == []


def test_a_url_scarab_did_not_make_is_left_alone(run_deploy, aws, project: Path) -> None:
    run_deploy()
    client("lambda", aws).create_function_url_config(FunctionName=MODELS, AuthType="AWS_IAM")
    result, recorder = run_deploy()
    assert result.up_to_date and recorder.mutating == []
    assert url_config(aws)["AuthType"] == "AWS_IAM"


def test_the_plan_shows_the_url_calls(run_deploy, aws, project: Path) -> None:
    configure(project, PUBLIC)
    result, recorder = run_deploy(dry_run=True)
    assert recorder.mutating == []
    calls = [
        (i.operation, json.dumps(i.params, default=str))
        for s in result.plan
        if s.resource.startswith(("lambda.url", f"lambda.permission {MODELS}:live scarab-fun"))
        for i in s.instructions
    ]
    assert [c[0] for c in calls] == ["CreateFunctionUrlConfig", "AddPermission"]
    assert '"FunctionUrlAuthType": "NONE"' in calls[1][1]
    assert all('"Qualifier": "live"' in params for _, params in calls)


def test_destroy_shows_and_removes_the_url(run_deploy, aws, project: Path) -> None:
    configure(project, PUBLIC)
    run_deploy()
    config = load_config(project)
    removed = destroy(config, project_dir=project, endpoint_url=aws.url).removed
    models = [r for r in removed if MODELS in r]
    # The URL and its public grant are in the plan, before the function they belong to.
    assert models[:4] == [
        f"lambda.url {MODELS}:live",
        f"lambda.permission {MODELS}:live {URL_PERMISSION_SID}",
        f"lambda.permission {MODELS}:live scarab-apigateway-invoke-live",
        f"lambda.alias {MODELS}:live",
    ]
    assert f"lambda.function {MODELS}" in models
    assert not [r for r in removed if r.startswith("lambda.url scarab-test-analyze")]
    assert client("lambda", aws).list_functions()["Functions"] == []
