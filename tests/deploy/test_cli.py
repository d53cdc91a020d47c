"""The Typer shell: exit codes, --json output, --local and --endpoint-url."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scarab.cli import app
from scarab.emulator import start_embedded
from typer.testing import CliRunner

from tests.deploy.conftest import client


@pytest.mark.emulator
def test_deploy_then_up_to_date_then_destroy(aws, project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project)
    runner = CliRunner()
    first = runner.invoke(app, ["deploy", "--endpoint-url", aws.url, "--json"])
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert data["up_to_date"] is False and data["stage"] == "test"
    assert data["url"].endswith(f"/restapis/{data['rest_api_id']}/test/_user_request_")
    assert "api_key" not in data  # the value only with --show-key
    second = runner.invoke(app, ["deploy", "--endpoint-url", aws.url, "--show-key"])
    assert second.exit_code == 0, second.output
    assert "up to date" in second.output
    value = client("apigateway", aws).get_api_key(apiKey=data["api_key_id"], includeValue=True)
    assert value["value"] in second.output
    dry = runner.invoke(app, ["deploy", "--endpoint-url", aws.url, "--dry-run", "--stage", "other"])
    assert dry.exit_code == 0 and "create iam.role scarab-other-analyze-role: missing" in dry.output
    refused = runner.invoke(app, ["destroy", "--endpoint-url", aws.url])
    assert refused.exit_code == 2
    assert "create iam.role scarab-other-models-role: missing" in dry.output
    assert [f["FunctionName"] for f in data_functions(aws)] == [
        "scarab-test-analyze",
        "scarab-test-models",
    ]
    gone = runner.invoke(app, ["destroy", "--yes", "--endpoint-url", aws.url])
    assert gone.exit_code == 0, gone.output
    assert client("lambda", aws).list_functions()["Functions"] == []


def data_functions(aws: object) -> list[dict[str, str]]:
    got = client("lambda", aws).list_functions()["Functions"]
    return sorted(got, key=lambda f: f["FunctionName"])


def test_local_uses_a_running_emulator(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project)
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    emulator = start_embedded(project)  # what `scarab serve` does
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["deploy", "--local", "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["url"].startswith(emulator.url)
        status = runner.invoke(app, ["status", "--local", "--json"])
        assert status.exit_code == 0, status.output
        assert json.loads(status.output)["rest_api_id"] == data["rest_api_id"]
        assert (project / ".scarab/local/state/test.json").exists()
        assert not (project / ".scarab/state/test.json").exists()
    finally:
        emulator.stop()


def test_local_and_endpoint_url_together_is_bad_usage(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["status", "--local", "--endpoint-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "not both" in result.output


def test_an_unknown_speed_is_bad_usage_naming_the_tiers(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project)
    image = project / "photo.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0fake-jpeg")
    args = [
        "invoke",
        "--image",
        str(image),
        "--speed",
        "turbo",
        "--endpoint-url",
        "http://127.0.0.1:9",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--speed 'turbo': use regular, fast or super-fast." in result.output


def test_unknown_option_is_exit_2(project: Path, monkeypatch) -> None:
    monkeypatch.chdir(project)
    assert CliRunner().invoke(app, ["deploy", "--no-such-flag"]).exit_code == 2


def test_serve_is_registered() -> None:
    import typer.main

    names = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {
        "build",
        "deploy",
        "status",
        "invoke",
        "logs",
        "destroy",
        "serve",
        "keys",
        "secrets",
    } <= names


def test_deploy_sh_hands_over_to_scarab_deploy() -> None:
    import subprocess

    from tests.deploy.conftest import REPO

    proc = subprocess.run(
        ["bash", str(REPO / "deploy.sh"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "--dry-run" in proc.stdout and "--show-key" in proc.stdout
