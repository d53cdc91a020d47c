"""What a version records (pure), where the git commit comes from (a real git checkout),
and the README's `scarab versions` block, run as written against the moto server."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
from scarab.cli import app
from scarab.deploy.display import render
from scarab.deploy.planner_versions import (
    DESCRIPTION_LIMIT,
    parse_version_description,
    version_description,
)
from scarab.deploy.provenance import git_commit
from typer.testing import CliRunner

from tests.deploy.test_planner import converged, desired, step

README = Path(__file__).resolve().parents[2] / "README.md"
SHA = "wqfzM8AoRrYP+A16Fcqin01rbzQX3CzA2NWZ4kzubYE="


def test_a_description_records_code_config_commit_and_version() -> None:
    text = version_description(SHA, "0123456789abcdef01234567", "a" * 40 + "-dirty", "0.1.0")
    assert text == (
        f"scarab code={SHA} config=0123456789abcdef01234567 commit={'a' * 40}-dirty scarab=0.1.0"
    )
    assert parse_version_description(text) == {
        "code": SHA,
        "config": "0123456789abcdef01234567",
        "commit": "a" * 40 + "-dirty",
        "scarab": "0.1.0",
    }
    # No git checkout: no commit recorded.
    bare = version_description(SHA, "d", None, "0.1.0")
    assert "commit" not in parse_version_description(bare)


def test_a_description_stays_within_lambdas_limit_keeping_what_decides() -> None:
    text = version_description(SHA, "d" * 24, "c" * 200, "9" * 200)
    assert len(text) == DESCRIPTION_LIMIT
    fields = parse_version_description(text)
    assert (fields["code"], fields["config"]) == (SHA, "d" * 24)


@pytest.mark.parametrize("text", [None, "", "Scarab analyze (deployed by scarab)", "scarab x=1"])
def test_anyone_elses_description_records_nothing(text: str | None) -> None:
    assert parse_version_description(text) == {}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def test_the_commit_is_heads_with_dirty_for_uncommitted_changes(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None  # not a git checkout
    _git(tmp_path, "init", "-q")
    assert git_commit(tmp_path) is None  # no commit yet
    (tmp_path / "scarab.toml").write_text('app = "scarab"\n')
    _git(tmp_path, "add", "scarab.toml")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert git_commit(tmp_path) == head
    (tmp_path / "scarab.toml").write_text('app = "other"\n')
    assert git_commit(tmp_path) == f"{head}-dirty"
    _git(tmp_path, "checkout", "-q", "scarab.toml")
    (tmp_path / "new.py").write_text("")  # an untracked file goes into the zip too
    assert git_commit(tmp_path) == f"{head}-dirty"


def test_a_canary_plan_shows_the_weighted_version_by_name(tmp_path: Path) -> None:
    from scarab.deploy.planner import plan

    d = desired(tmp_path, **{"functions.models.memory": 1024})
    steps = plan(d, converged(desired(tmp_path)), canary_percent=10)
    [shown] = render([step(steps, "lambda.alias scarab-dev-models:live")])
    [call] = shown["calls"]
    assert call["params"]["RoutingConfig"] == {
        "AdditionalVersionWeights": {"${version_models}": 0.1}
    }
    json.dumps(shown)  # `scarab plan --json` prints it


def readme_block() -> tuple[list[str], list[str]]:
    """The `scarab versions` commands of the README's Versions section, and its example
    output."""
    section = README.read_text().split("## Versions\n", 1)[1].split("\n## ", 1)[0]
    commands = section.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    example = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    return [c.split("#", 1)[0].strip() for c in commands], example


@pytest.mark.emulator
def test_the_readme_versions_block_runs(
    run_deploy, aws, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_deploy()
    run_deploy({"functions.models.memory": 1024})
    monkeypatch.chdir(project)
    commands, example = readme_block()
    assert commands == ["scarab versions", "scarab versions --function models --json"]
    outputs = {}
    for command in commands:
        argv = [*shlex.split(command)[1:], "--endpoint-url", aws.url]
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0, (command, result.output)
        outputs[command] = result.output
    lines = outputs["scarab versions"].splitlines()
    assert lines[0] == "analyze (scarab-test-analyze)"
    models = lines.index("models (scarab-test-models)")
    # The example's header is the one printed; newest first, live on the newest.
    assert lines[models + 1] == example[1]
    assert lines[models + 2].split()[0] == "2" and lines[models + 2].endswith("live 100%")
    assert lines[models + 3].split()[0] == "1" and "live" not in lines[models + 3]
    data = json.loads(outputs["scarab versions --function models --json"])
    assert list(data["functions"]) == ["models"]
    assert [v["version"] for v in data["functions"]["models"]["versions"]] == ["2", "1"]
    # An unknown function is a usage error naming the functions, not a traceback.
    bad = CliRunner().invoke(app, ["versions", "--function", "nope", "--endpoint-url", aws.url])
    assert bad.exit_code != 0 and "analyze, models" in bad.output
