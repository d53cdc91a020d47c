"""Review of issue 15: [sagemaker] numbers are numbers. TOML's `true` was taken as 1
(max_concurrency = true meant 1) and 1024.0 as 1024; both are usage errors (exit 2)
before any AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.cli import app
from typer.testing import CliRunner

NOWHERE = "http://127.0.0.1:9"  # a command that reached AWS would fail with exit 1


@pytest.mark.parametrize(
    ("target", "section"),
    [
        ("sagemaker", "[sagemaker]\nmax_concurrency = true\n"),
        ("sagemaker", "[sagemaker]\nmemory_mb = 1024.0\n"),
        ("sagemaker", "[sagemaker]\nmodels = 'tabular'\n"),
    ],
    ids=["concurrency-true", "memory-float", "models-str"],
)
def test_a_number_of_the_wrong_type_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, section: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    (tmp_path / "scarab.toml").write_text(f'app = "scarab"\nstage = "test"\n\n{section}')
    got = CliRunner().invoke(app, ["plan", "--target", target, "--endpoint-url", NOWHERE])
    assert got.exit_code == 2, got.output
    assert f"'{target}." in got.output
    assert "Traceback" not in got.output
