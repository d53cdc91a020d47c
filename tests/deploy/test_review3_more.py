"""Review 3 follow-ups: the rest of the findings, each with a test that fails on the
commit before the fixes (config validation, the region's last fallbacks, the state
record's owner, the lock's staleness, exact key names)."""

from __future__ import annotations

import datetime
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from scarab.aws import is_loopback
from scarab.config import load_config
from scarab.deploy import make_aws
from scarab.deploy.lock import _stale
from scarab.deploy.state import state_path
from scarab.errors import ConfigError, ScarabError

from tests.deploy.conftest import LOCK, client
from tests.support.serve_process import scarab_cli

MARKER = "MARKER-0123456789abcdef"


def _config(tmp_path: Path, text: str) -> Path:
    (tmp_path / "scarab.toml").write_text('app = "scarab"\nstage = "test"\n' + text)
    return tmp_path


# -- 11. secret-looking names and values ------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["SECRET", "TOKEN", "GITHUB_TOKEN_1", "GEMINI_KEY", "CLIENT_SECRET_VALUE", "SENTRY_DSN"],
)
def test_secret_looking_names_are_refused(tmp_path: Path, name: str) -> None:
    _config(tmp_path, f'[function.environment]\n{name} = "{MARKER}"\n')
    with pytest.raises(ConfigError, match="looks like a secret") as exc:
        load_config(tmp_path)
    assert MARKER not in str(exc.value)


@pytest.mark.parametrize("name", ["MAX_TOKENS", "TOKEN_LIMIT", "SORT_KEY", "LOG_LEVEL"])
def test_ordinary_names_are_accepted(tmp_path: Path, name: str) -> None:
    _config(tmp_path, f'[function.environment]\n{name} = "on"\n')
    assert load_config(tmp_path).function.environment == {name: "on"}


def test_a_value_with_url_credentials_is_refused_without_echoing_it(tmp_path: Path) -> None:
    _config(tmp_path, f'[function.environment]\nUPSTREAM = "https://bob:{MARKER}@db.example"\n')
    with pytest.raises(ConfigError, match="embeds credentials") as exc:
        load_config(tmp_path)
    assert MARKER not in str(exc.value)


@pytest.mark.parametrize("value", [f"AIzaSy{MARKER}", f"sk-{MARKER}", f"ghp_{MARKER}"])
def test_a_value_shaped_like_a_key_is_refused_under_any_name(tmp_path: Path, value: str) -> None:
    _config(tmp_path, f'[function.environment]\nFEATURE_FLAGS = "{value}"\n')
    with pytest.raises(ConfigError, match="looks like an API key") as exc:
        load_config(tmp_path)
    assert MARKER not in str(exc.value)


# -- 14. the secret's name ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (f"AIzaSy{MARKER}", "looks like an API key"),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/x", "not its ARN"),
        ("/scarab/{app}/{region}/key", "placeholders"),
        ("/scarab/{app/key", "unbalanced"),
        ("scarab/no-leading-slash", "starts with '/'"),
        ("/scarab/has space", "letters, digits"),
    ],
)
def test_a_bad_secret_name_is_refused_without_echoing_it(
    tmp_path: Path, value: str, why: str
) -> None:
    _config(tmp_path, f'[secrets]\ngemini_api_key = "{value}"\n')
    with pytest.raises(ConfigError, match=why) as exc:
        load_config(tmp_path)
    assert value not in str(exc.value)


def test_a_secrets_manager_name_needs_no_slash(tmp_path: Path) -> None:
    _config(tmp_path, '[secrets]\nbackend = "secretsmanager"\ngemini_api_key = "{app}-{stage}"\n')
    assert load_config(tmp_path).secret_name == "scarab-test"


# -- 2. no region anywhere: refused against AWS, us-east-1 on an emulator -------------------


def test_no_region_anywhere_is_refused_against_aws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    config = load_config(_config(tmp_path, ""))
    with pytest.raises(ScarabError, match="No AWS region set") as exc:
        make_aws(config)
    assert "--region" in str(exc.value)
    # An emulator does not care which region: the default is fine there.
    assert make_aws(config, endpoint_url="http://127.0.0.1:9").region == "us-east-1"


def test_loopback_spellings() -> None:
    for url in ("http://127.0.0.1:1", "http://127.1:4566", "http://localhost:1", "http://[::1]:1"):
        assert is_loopback(url), url
    for url in ("http://localstack:4566", "https://ssm.us-east-1.amazonaws.com", None):
        assert not is_loopback(url), url


# -- 15. a record from another app; a lock record's age -------------------------------------


@pytest.mark.emulator
def test_a_state_record_of_another_app_is_refused(run_deploy, aws, project: Path) -> None:
    run_deploy()
    path = state_path(project.resolve(), "test", aws.url)
    record = json.loads(path.read_text())
    record["app"] = "someone-else"
    path.write_text(json.dumps(record))
    result = scarab_cli(project, "status")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "belongs to app someone-else" in result.stderr, result.stderr


def test_an_unreadable_lock_record_goes_stale_by_ssm_age() -> None:
    now = datetime.datetime.now(datetime.UTC)
    assert _stale("not json", now - datetime.timedelta(minutes=20), 15)
    assert not _stale("not json", now - datetime.timedelta(minutes=5), 15)


@pytest.mark.emulator
def test_a_lock_left_by_a_dead_process_on_this_machine_is_taken_over(
    run_deploy, aws, project: Path
) -> None:
    run_deploy()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    holder = {"owner": "me", "host": socket.gethostname(), "pid": int(dead.stdout),
              "command": "deploy", "started": now, "token": "dead"}  # fmt: skip
    client("ssm", aws).put_parameter(Name=LOCK, Value=json.dumps(holder), Type="String")
    toml = project / "scarab.toml"
    toml.write_text(toml.read_text().replace("memory = 512", "memory = 640"))
    result = scarab_cli(project, "deploy")
    assert result.returncode == 0, result.stderr
    assert "took over a stale lock" in result.stderr


# -- 15. key names match exactly --------------------------------------------------------------


@pytest.mark.emulator
def test_another_stages_keys_are_not_this_stages(run_deploy, aws, project: Path) -> None:
    run_deploy()
    # Stage `test-key-x` of the same app: its keys start with `scarab-test-key-`.
    client("apigateway", aws).create_api_key(name="scarab-test-key-x-key-1", enabled=True)
    result = scarab_cli(project, "keys", "list", "--json", check=True)
    assert [k["name"] for k in json.loads(result.stdout)] == ["scarab-test-key-1"]


# -- 6. --force-unlock says what it did ------------------------------------------------------


@pytest.mark.emulator
def test_force_unlock_with_nothing_to_deploy_says_so(run_deploy, aws, project: Path) -> None:
    run_deploy()
    result = scarab_cli(project, "deploy", "--force-unlock", check=True)
    assert "--force-unlock (nothing to deploy)" in result.stderr, result.stderr
