"""Hardening: the wrong region, concurrent deploys, a corrupt state record and secrets
in [function.environment] are refused with advice instead of damaging the stage."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from scarab.cli import app
from scarab.config import load_config
from scarab.deploy import deploy
from scarab.deploy.lock import StageLocked
from scarab.deploy.state import StageState, load_state, save_state, state_path
from typer.testing import CliRunner

from tests.deploy.conftest import LOCK, client, seed_lock
from tests.deploy.test_failures import assert_single_stack
from tests.support.serve_process import scarab_cli

pytestmark = pytest.mark.emulator


def cli(*args: str) -> tuple[int, str]:
    """Run the CLI in-process (cwd: the project); exit code and stdout+stderr."""
    result = CliRunner().invoke(app, list(args))
    # A ScarabError ends in typer.Exit (SystemExit); anything else would be a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def bump_memory(project: Path) -> None:
    """Change the config so that the next deploy has steps (and so takes the lock)."""
    toml = project / "scarab.toml"
    toml.write_text(toml.read_text().replace("memory = 512", "memory = 640"))


# -- 4. the wrong region ---------------------------------------------------------------


def test_every_stage_command_refuses_another_region(
    run_deploy, aws, project: Path, monkeypatch
) -> None:
    run_deploy()
    monkeypatch.chdir(project)
    monkeypatch.setenv("SAFETY_GEMINI", "gemini-value")
    image = project / "photo.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0fake-jpeg")
    key_id = load_state(project, "test", aws.url).api_key_ids[0]
    commands = [
        ["deploy"],
        ["destroy", "--yes"],
        ["status"],
        ["keys", "list"],
        ["keys", "create", "extra"],
        ["keys", "rotate"],
        ["keys", "revoke", key_id],
        ["secrets", "set", "gemini-api-key", "--from-env", "SAFETY_GEMINI"],
        ["invoke", "--image", str(image)],
        ["logs"],
        ["unlock"],
    ]
    for args in commands:
        code, output = cli(*args, "--region", "us-west-2")
        assert code == 1, (args, output)
        assert "deployed in us-east-1" in output and "targets us-west-2" in output, (args, output)
        assert "--region us-east-1" in output and "scarab destroy --region us-east-1" in output
    # Nothing of the stage was touched: the role (global) and the record are still there.
    role = client("iam", aws).get_role(RoleName="scarab-test-analyze-role")["Role"]
    fn = client("lambda", aws).get_function_configuration(FunctionName="scarab-test-analyze")
    assert fn["Role"] == role["Arn"]
    assert state_path(project, "test", aws.url).exists()
    assert len(client("apigateway", aws).get_api_keys()["items"]) == 1


def test_destroy_elsewhere_keeps_the_role_a_live_function_uses(
    run_deploy, aws, project: Path, monkeypatch
) -> None:
    run_deploy()
    monkeypatch.chdir(project)
    # Another machine, or a lost record: nothing tells destroy where the stage lives.
    state_path(project, "test", aws.url).unlink()
    code, output = cli("destroy", "--yes", "--region", "us-west-2")
    assert code == 1, output
    assert "kept the IAM roles scarab-test-analyze-role, scarab-test-models-role" in output
    assert "scarab-test-analyze in us-east-1 still uses it" in output
    assert "scarab-test-models in us-east-1 still uses it" in output
    assert "scarab destroy --region us-east-1" in output
    role = client("iam", aws).get_role(RoleName="scarab-test-analyze-role")["Role"]
    fn = client("lambda", aws).get_function_configuration(FunctionName="scarab-test-analyze")
    assert fn["Role"] == role["Arn"]
    code, output = cli("destroy", "--yes")  # where it lives: everything goes, role last
    assert code == 0, output
    assert "scarab-test-role" not in [r["RoleName"] for r in iam_roles(aws)]
    assert client("lambda", aws).list_functions()["Functions"] == []


def iam_roles(aws) -> list[dict]:
    return client("iam", aws).list_roles()["Roles"]


# -- 5. the stage lock and duplicates --------------------------------------------------


def lock_exists(aws) -> bool:
    names = [p["Name"] for p in client("ssm", aws).describe_parameters()["Parameters"]]
    return LOCK in names


@pytest.mark.slow
def test_concurrent_deploys_make_one_stack_and_the_loser_is_told(
    aws, project: Path, tmp_path: Path
) -> None:
    """A deploy holds the lock mid-way; a second machine's `scarab deploy` (another
    checkout: only the account's lock is shared) and a second deploy on this machine
    (same checkout: the file lock) are both refused; one stack results."""
    laptop_ci = tmp_path / "ci"
    shutil.copytree(project, laptop_ci)
    inside, go_on = threading.Event(), threading.Event()

    def progress(message: str) -> None:
        if message.startswith("[1/"):  # executing: the lock is held
            inside.set()
            assert go_on.wait(120), "the test never let the first deploy finish"

    errors: list[BaseException] = []

    def first() -> None:
        try:
            deploy(load_config(project), project_dir=project, progress=progress)
        except BaseException as exc:
            errors.append(exc)
            inside.set()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert inside.wait(120) and not errors, errors
        other = scarab_cli(laptop_ci, "deploy")
        assert other.returncode == 1, other.stdout + other.stderr
        assert "Stage test is locked by 'deploy'" in other.stderr
        assert "(pid " in other.stderr and " since " in other.stderr
        assert "scarab unlock" in other.stderr and "--force-unlock" in other.stderr
        assert "Traceback" not in other.stderr
        with pytest.raises(StageLocked, match="locked on this machine by 'deploy'"):
            deploy(load_config(project), project_dir=project)
    finally:
        go_on.set()
        thread.join(180)
    assert not errors, errors
    assert_single_stack(aws, "test")
    assert not lock_exists(aws), "the lock is released"
    again = scarab_cli(laptop_ci, "deploy", "--json", check=True)
    assert json.loads(again.stdout)["up_to_date"] is True
    assert_single_stack(aws, "test")


def test_a_held_lock_refuses_every_mutating_command(
    run_deploy, aws, project: Path, monkeypatch
) -> None:
    run_deploy()
    key_id = load_state(project, "test", aws.url).api_key_ids[0]
    bump_memory(project)
    monkeypatch.chdir(project)
    monkeypatch.setenv("SAFETY_GEMINI", "gemini-value")
    seed_lock(aws, minutes_ago=3)
    for args in (
        ["deploy"],
        ["destroy", "--yes"],
        ["keys", "create", "extra"],
        ["keys", "rotate"],
        ["keys", "revoke", key_id],
        ["secrets", "set", "gemini-api-key", "--from-env", "SAFETY_GEMINI"],
    ):
        code, output = cli(*args)
        assert code == 1, (args, output)
        assert "Stage test is locked by 'deploy' by ci@runner-1 (pid 4242) since" in output
        assert "(3 min ago)" in output and "scarab unlock" in output, output
    # Read-only commands and a dry run do not lock.
    code, output = cli("deploy", "--dry-run")
    assert code == 0 and "Plan for stage test" in output, output
    assert cli("status")[0] == 0 and cli("keys", "list")[0] == 0
    assert lock_exists(aws)
    assert len(client("apigateway", aws).get_api_keys()["items"]) == 1
    code, output = cli("deploy", "--force-unlock")
    assert code == 0, output
    assert "removed the lock" in output and "ci@runner-1" in output
    assert not lock_exists(aws)
    fn = client("lambda", aws).get_function_configuration(FunctionName="scarab-test-analyze")
    assert fn["MemorySize"] == 640
    seed_lock(aws, minutes_ago=1)
    code, output = cli("unlock")
    assert code == 0 and "ci@runner-1" in output, output
    assert not lock_exists(aws)
    assert cli("unlock") == (0, "Stage test is not locked.\n")


def test_a_stale_lock_is_taken_over(run_deploy, aws, project: Path, monkeypatch) -> None:
    run_deploy()
    bump_memory(project)
    monkeypatch.chdir(project)
    seed_lock(aws, minutes_ago=16)  # the default timeout is 15 minutes
    code, output = cli("deploy")
    assert code == 0, output
    assert "took over a stale lock: 'deploy' by ci@runner-1" in output
    assert not lock_exists(aws)
    # The timeout is configurable: 30 minutes makes the same age a live lock.
    (project / "scarab.toml").write_text(
        (project / "scarab.toml").read_text().replace("memory = 640", "memory = 768")
        + "\n[lock]\ntimeout_minutes = 30\n"
    )
    seed_lock(aws, minutes_ago=16)
    code, output = cli("deploy")
    assert code == 1 and "is locked" in output and "older than 30 min" in output, output


def test_duplicates_are_named_with_advice_not_adopted(
    run_deploy, aws, project: Path, monkeypatch
) -> None:
    first, _ = run_deploy()
    apigw = client("apigateway", aws)
    orphan_api = apigw.create_rest_api(name="scarab-test")["id"]
    orphan_plan = apigw.create_usage_plan(name="scarab-test-plan")["id"]
    orphan_key = apigw.create_api_key(name="scarab-test-key-1", enabled=True)["id"]
    monkeypatch.chdir(project)
    code, output = cli("deploy")
    assert code == 1, output
    assert "duplicate resources" in output
    assert f"2 REST APIs are named scarab-test: {first.rest_api_id}" in output
    assert f"{first.rest_api_id} created" in output and "(scarab keeps this one)" in output
    assert f"aws apigateway delete-rest-api --rest-api-id {orphan_api} --region us-east-1" in (
        output
    )
    assert "2 usage plans are named scarab-test-plan" in output and orphan_plan in output
    assert "2 API keys are named scarab-test-key-1" in output and orphan_key in output
    # destroy removes every copy.
    code, output = cli("destroy", "--yes")
    assert code == 0, output
    assert [a for a in apigw.get_rest_apis()["items"] if a["name"] == "scarab-test"] == []
    assert apigw.get_usage_plans()["items"] == []
    assert apigw.get_api_keys()["items"] == []


# -- 6. the state record ---------------------------------------------------------------

CORRUPT = {
    "invalid JSON": ('{"region": "us-east-1",', "not valid JSON"),
    "array": ("[]", "JSON list, not an object"),
    "string": ('"us-east-1"', "JSON str, not an object"),
    "wrong field type": ('{"stage": "test", "region": 5}', "region: Input should be"),
    "wrong list type": ('{"stage": "test", "api_key_ids": "abc"}', "api_key_ids"),
    "wrong item type": ('{"stage": "test", "api_key_ids": [1]}', "api_key_ids"),
    "other stage": ('{"stage": "prod", "region": "us-east-1"}', "record of stage 'prod'"),
}


@pytest.mark.parametrize("shape", sorted(CORRUPT))
def test_a_corrupt_state_record_is_refused_with_advice(
    aws, project: Path, monkeypatch, shape: str
) -> None:
    text, why = CORRUPT[shape]
    path = state_path(project.resolve(), "test", aws.url)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    monkeypatch.chdir(project)
    for args in (["status"], ["deploy", "--dry-run"], ["destroy", "--yes"], ["keys", "list"]):
        code, output = cli(*args)
        assert code == 2, (args, output)
        flat = " ".join(output.split())
        assert f"The state record {path} is unusable" in flat and why in flat, (args, output)
        assert f"mv {path} {path}.bad" in flat and "Traceback" not in output
    assert path.read_text() == text, "the record is left for the person to look at"


def test_status_on_an_array_record_in_a_real_process(aws, project: Path) -> None:
    path = state_path(project.resolve(), "test", aws.url)
    path.parent.mkdir(parents=True)
    path.write_text("[]")
    result = scarab_cli(project, "status")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and str(path) in " ".join(result.stderr.split())


def test_a_failed_write_leaves_the_old_record_and_no_temporary_file(project: Path) -> None:
    good = StageState(app="scarab", stage="test", region="us-east-1", rest_api_id="abc")
    path = save_state(project, good)
    before = path.read_text()
    broken = StageState(app="scarab", stage="test", region="us-east-1", api_key_ids=[object()])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        save_state(project, broken)
    assert path.read_text() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["test.json"]
    assert load_state(project, "test", None) == good


# -- 7. secrets in [function.environment] ----------------------------------------------

MARKER = "sk-live-MARKER-0123456789"


@pytest.mark.parametrize(
    "name",
    [
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "STRIPE_SECRET",
        "DB_PASSWORD",
        "GITHUB_TOKEN",
        "OPENAI_API_KEY",
        "API_KEY",
        "MY_API_KEY_FILE",
        "DATABASE_URL",
        "ANALYTICS_DATABASE_URL",
        "DB_URL",
        "READONLY_DB_URL",
    ],
)
def test_secret_looking_environment_names_are_refused(
    project: Path, monkeypatch, name: str
) -> None:
    toml = project / "scarab.toml"
    toml.write_text(toml.read_text().replace("FEATURE_X = ", f'{name} = "{MARKER}", FEATURE_Y = '))
    monkeypatch.chdir(project)
    code, output = cli("deploy", "--dry-run")
    assert code == 2, output
    assert f"{name} looks like a secret" in output and "scarab secrets set" in output
    assert MARKER not in output


@pytest.mark.parametrize(
    "name", ["GOOGLE_API_KEY_PARAM", "ALLOWED_ORIGINS", "SCARAB_MODELS", "SCARAB_THINKING"]
)
def test_variables_scarab_manages_are_refused(project: Path, monkeypatch, name: str) -> None:
    toml = project / "scarab.toml"
    toml.write_text(toml.read_text().replace("FEATURE_X = ", f'{name} = "{MARKER}", FEATURE_Y = '))
    monkeypatch.chdir(project)
    code, output = cli("status")
    assert code == 2 and f"{name} is reserved" in output, output
    assert MARKER not in output


@pytest.mark.parametrize(
    "environment",
    [
        f'{{ "not a name" = "{MARKER}" }}',  # bad name: the whole table is the input
        f'{{ LOG_LEVEL = ["{MARKER}"] }}',  # bad value type
        f'"{MARKER}"',  # not a table at all
        f'{{ AWS_REGION = "{MARKER}" }}',
    ],
)
def test_config_errors_never_echo_environment_values(
    project: Path, monkeypatch, environment: str
) -> None:
    toml = project / "scarab.toml"
    text = toml.read_text().replace(
        'environment = { LOG_LEVEL = "DEBUG", FEATURE_X = "on" }', f"environment = {environment}"
    )
    assert MARKER in text
    toml.write_text(text)
    monkeypatch.chdir(project)
    result = scarab_cli(project, "deploy", "--dry-run")
    assert result.returncode == 2, result.stderr
    assert "function.environment" in result.stderr and "value not shown" in result.stderr
    assert MARKER not in result.stderr + result.stdout
