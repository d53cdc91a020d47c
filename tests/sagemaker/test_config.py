"""[sagemaker] validation and the options --target sagemaker refuses: exit 2 with a
message a person understands, before any AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.cli import app
from typer.testing import CliRunner

from tests.sagemaker.conftest import CONFIG, make_project
from tests.support.moto_server import MotoServer


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("cfg") / "proj")


def refused(project: Path, monkeypatch: pytest.MonkeyPatch, toml: str, *args: str) -> str:
    (project / "scarab.toml").write_text(CONFIG + toml)
    monkeypatch.chdir(project)
    # Nothing to reach: a refusal must come before any AWS call.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    got = CliRunner().invoke(app, list(args))
    assert got.exit_code == 2, got.output
    assert isinstance(got.exception, SystemExit)  # no traceback
    return " ".join(got.output.split())


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[sagemaker]\nmemory_mb = 1500\n",
            "'sagemaker.memory_mb': SageMaker Serverless takes 1024 to 6144 MB in steps of"
            " 1024: use one of 1024, 2048, 3072, 4096, 5120, 6144 (got 1500)",
        ),
        ("[sagemaker]\nmemory_mb = 8192\n", "(got 8192)"),
        (
            "[sagemaker]\nmax_concurrency = 0\n",
            "'sagemaker.max_concurrency': Input should be greater than or equal to 1 (got 0)",
        ),
        ("[sagemaker]\nmax_concurrency = 201\n", "less than or equal to 200 (got 201)"),
        ('[sagemaker]\nmodels = ["Tabular"]\n', "'Tabular' is not a registry model name"),
        ('[sagemaker]\nmodels = ["a", "a"]\n', "name each model once"),
        (
            "[sagemaker]\nmemory = 2048\n",
            "unknown key 'sagemaker.memory'; allowed keys here: max_concurrency, memory_mb, models",
        ),
    ],
)
def test_bad_values_are_usage_errors(
    project: Path, monkeypatch: pytest.MonkeyPatch, toml: str, message: str
) -> None:
    for command in ("plan", "deploy"):
        assert message in refused(project, monkeypatch, toml, command, "--target", "sagemaker")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "--canary", "10"], "--canary does not apply to --target sagemaker"),
        (["deploy", "--show-key"], "--show-key does not apply"),
        (["plan", "--package", "zip"], "--package does not apply"),
        (["destroy", "--include-models", "--yes"], "--include-models does not apply"),
        (["keys", "list"], "has no --target sagemaker"),
    ],
)
def test_lambda_options_are_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    assert message in refused(project, monkeypatch, "", *args, "--target", "sagemaker")


@pytest.mark.emulator
def test_names_too_long_for_sagemaker(
    aws: MotoServer, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "scarab.toml").write_text('app = "a' + "b" * 34 + '"\nstage = "stage-name-long"\n')
    monkeypatch.chdir(project)
    got = CliRunner().invoke(app, ["plan", "--target", "sagemaker", "--endpoint-url", aws.url])
    assert got.exit_code == 2, got.output
    text = " ".join(got.output.split())
    assert "SageMaker takes 63: shorten app-stage to 48 characters" in text
