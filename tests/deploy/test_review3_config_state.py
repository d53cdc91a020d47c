"""Review 3 (adversarial): config, state record and secrets. Each test fails on today's main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.deploy.state import lock_path, state_path
from scarab.errors import ConfigError

from tests.deploy.conftest import client
from tests.support.serve_process import scarab_cli

MARKER = "sk-live-MARKER-0123456789"


# -- names AWS refuses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "stage"),
    [
        ("a" * 40, "b" * 30),  # function and API <app>-<stage>: 71 chars; Lambda allows 64
        ("a" * 30, "b" * 30),  # role <app>-<stage>-role: 66 chars; IAM allows 64
        # Bucket <app>-artifacts-<account>-<region>: 30+11+12+1+14 = 68 chars; S3 allows 63
        # (every real zip deploy goes through it: the lambda zip is over 50 MB).
        ("a" * 30, "dev"),
    ],
)
def test_names_aws_would_refuse_are_refused_by_the_config(
    tmp_path: Path, app: str, stage: str
) -> None:
    (tmp_path / "scarab.toml").write_text(
        f'app = "{app}"\nstage = "{stage}"\nregion = "ap-southeast-2"\n'
    )
    with pytest.raises(ConfigError, match=r"app|stage"):
        load_config(tmp_path)


# -- config errors never echo environment values -------------------------------------------


def test_an_array_of_function_tables_does_not_echo_environment_values(project: Path) -> None:
    # [[function]] for [function]: one stray bracket.
    (project / "scarab.toml").write_text(
        f'app = "scarab"\nstage = "test"\n[[function]]\nenvironment = {{ FEATURE = "{MARKER}" }}\n'
    )
    result = scarab_cli(project, "deploy", "--dry-run")
    assert result.returncode == 2, result.stderr
    assert "function" in result.stderr
    assert MARKER not in result.stderr + result.stdout


@pytest.mark.parametrize("name", ["SECRET_KEY", "PASSWORD", "DB_PASSWORD2", "PRIVATE_KEY"])
def test_more_secret_looking_names_are_refused(project: Path, name: str) -> None:
    (project / "scarab.toml").write_text(
        f'app = "scarab"\nstage = "test"\n[function.environment]\n{name} = "{MARKER}"\n'
    )
    result = scarab_cli(project, "deploy", "--dry-run")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "looks like a secret" in result.stderr


# -- the state record and lock file: advice, never a traceback -----------------------------


@pytest.mark.emulator
def test_a_deeply_nested_state_record_is_refused_with_advice(aws, project: Path) -> None:
    path = state_path(project.resolve(), "test", aws.url)
    path.parent.mkdir(parents=True)
    path.write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    result = scarab_cli(project, "status")
    assert "Traceback" not in result.stderr, result.stderr[-600:]
    assert result.returncode == 2 and "is unusable" in result.stderr


@pytest.mark.emulator
def test_a_directory_in_place_of_the_lock_file_is_refused_with_advice(
    run_deploy, aws, project: Path
) -> None:
    run_deploy()
    toml = project / "scarab.toml"
    toml.write_text(toml.read_text().replace("memory = 512", "memory = 640"))
    lock = lock_path(project.resolve(), "test", aws.url)
    lock.unlink(missing_ok=True)  # the first deploy left the (unlocked) lock file
    lock.mkdir()
    result = scarab_cli(project, "deploy")
    assert "Traceback" not in result.stderr, result.stderr[-600:]
    assert result.returncode != 0
    assert "lock file" in result.stderr and "rm -r" in result.stderr, result.stderr


# -- switching [secrets] backend ----------------------------------------------------------


def _role_action(aws) -> str:
    doc = client("iam", aws).get_role_policy(
        RoleName="scarab-test-analyze-role", PolicyName="scarab-read-secret"
    )["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    return str(doc["Statement"][0]["Action"])


def _function_backend(aws) -> str:
    cfg = client("lambda", aws).get_function_configuration(FunctionName="scarab-test-analyze")
    return str(cfg["Environment"]["Variables"]["GOOGLE_API_KEY_BACKEND"])


@pytest.mark.emulator
def test_secrets_set_after_a_backend_switch_leaves_a_function_that_can_read_it(
    run_deploy, aws, project: Path
) -> None:
    run_deploy()  # backend ssm: the role may read the SSM parameter
    toml = project / "scarab.toml"
    toml.write_text(toml.read_text() + '\n[secrets]\nbackend = "secretsmanager"\n')
    result = scarab_cli(project, "secrets", "set", "gemini-api-key", "--stdin", stdin=MARKER)
    assert result.returncode == 0, result.stderr
    backend = _function_backend(aws)
    want = {"ssm": "ssm:GetParameter", "secretsmanager": "secretsmanager:GetSecretValue"}
    readable = _role_action(aws) == want[backend]
    # Either the function can read the key now, or the person is told to deploy first.
    assert readable or "scarab deploy" in result.stdout, (
        f"the function reads {backend} but its role may only {_role_action(aws)};"
        f" scarab said: {result.stdout}"
    )


@pytest.mark.emulator
def test_a_deploy_that_points_the_function_at_a_missing_secret_says_so(
    run_deploy, aws, project: Path
) -> None:
    run_deploy()
    scarab_cli(project, "secrets", "set", "gemini-api-key", "--stdin", stdin=MARKER, check=True)
    toml = project / "scarab.toml"
    toml.write_text(toml.read_text() + '\n[secrets]\nbackend = "secretsmanager"\n')
    result = scarab_cli(project, "deploy")
    assert result.returncode == 0, result.stderr
    # The key is in SSM, the function now reads Secrets Manager (where there is none) and
    # may no longer read SSM: /analyze is down. The person must be told what to run.
    assert "scarab secrets set" in result.stdout + result.stderr, result.stdout + result.stderr
