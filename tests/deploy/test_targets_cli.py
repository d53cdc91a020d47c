"""`--target`: the commands that take it, and what an unknown target or option says."""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.cli import app
from scarab.errors import ScarabError
from scarab.targets import TARGETS, check_target
from typer.testing import CliRunner

COMMANDS_WITH_TARGET = [
    ["deploy"], ["plan"], ["status"], ["destroy"], ["invoke"],
    ["keys", "list"], ["keys", "create"], ["keys", "rotate"], ["keys", "revoke"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS_WITH_TARGET, ids=" ".join)
def test_each_command_names_the_targets_in_its_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "--target" in result.output and "sagemaker or fargate" in result.output


def test_an_unknown_target_is_a_usage_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scarab.toml").write_text('app = "scarab"\nstage = "test"\n')
    result = CliRunner().invoke(app, ["status", "--target", "ec2"])
    assert result.exit_code == 2
    assert "--target 'ec2': use lambda, sagemaker, fargate." in result.output
    with pytest.raises(ScarabError) as e:
        check_target("Lambda")
    assert e.value.exit_code == 2
    assert TARGETS[0] == "lambda"


def test_invoke_on_lambda_needs_an_image_and_refuses_sagemaker_options(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scarab.toml").write_text('app = "scarab"\nstage = "test"\n')
    (tmp_path / "a.png").write_bytes(b"x")
    missing = CliRunner().invoke(app, ["invoke", "--endpoint-url", "http://127.0.0.1:9"])
    assert missing.exit_code == 2 and "Missing option '--image'" in missing.output
    mixed = CliRunner().invoke(
        app, ["invoke", "--image", "a.png", "--model", "m", "--endpoint-url", "http://127.0.0.1:9"]
    )
    assert mixed.exit_code == 2 and "--model and --data go with --target sagemaker" in mixed.output
