"""Review 13 (adversarial), `scarab deploy --canary` from the command line:

- the stage lock was released when the deploy ended and taken again for the bake: in
  between, another run could deploy over the canary. It is now held from the deploy
  through the end of the bake;
- Ctrl-C after the deploy started the canary and before the bake watched it left the
  canary serving, unwatched: it is now rolled back (exit 130);
- a bake longer than the lock's stale timeout minus 5 minutes ran: mid-bake another run
  would take the lock over as stale. It is refused before any change (exit 2).

The first two share one scenario (a deploy, then a canary deploy interrupted at the
moment it prints what it deployed, after the deploy and before the bake), run once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import scarab.cli
from scarab.aws import Aws
from scarab.cli import app
from scarab.deploy.lock import StageLocked, stage_lock
from scarab.naming import Names
from typer.testing import CliRunner

from tests.deploy.conftest import ANALYZE, CONFIG, LOCK, REPO, client
from tests.deploy.release_support import alias
from tests.support.moto_server import FAKE_CREDENTIALS, MotoServer

pytestmark = pytest.mark.emulator


def _project(root: Path, config: str = CONFIG) -> Path:
    shutil.copytree(
        REPO / "lambda", root / "lambda", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    (root / "scarab.toml").write_text(config)
    return root


@dataclass
class Interrupted:
    """What the interrupted canary deploy did and what was seen in the gap."""

    exit_code: int
    output: str
    lock_probe: str  # "free", or "locked" when a second run found the stage locked
    record_at_probe: str | None  # the SSM lock record then
    record_after: str | None
    alias_before: tuple[str, dict[str, float]]
    alias_after: tuple[str, dict[str, float]]


def _record(aws: MotoServer) -> str | None:
    ssm = client("ssm", aws)
    try:
        return str(ssm.get_parameter(Name=LOCK)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


@pytest.fixture(scope="module")
def interrupted(
    moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Interrupted]:
    with pytest.MonkeyPatch.context() as mp:
        moto_server.reset()
        for key, value in FAKE_CREDENTIALS.items():
            mp.setenv(key, value)
        mp.setenv("AWS_ENDPOINT_URL", moto_server.url)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.setenv("SCARAB_CACHE_DIR", str(REPO / ".scarab" / "cache"))
        project = _project(tmp_path_factory.mktemp("r13canary") / "proj")
        mp.chdir(project)
        runner = CliRunner()
        first = runner.invoke(app, ["deploy"])
        assert first.exit_code == 0, first.output
        before = alias(moto_server)
        (project / "lambda" / "lens" / "canary_marker.py").write_text("CHANGED = True\n")
        seen: dict[str, Any] = {}

        def between(result: Any, *_: Any) -> None:
            # After the deploy, before the bake: can another run take the stage now?
            aws = Aws("us-east-1", endpoint_url=moto_server.url)
            try:
                with stage_lock(aws, Names("scarab", "test"), project, command="other",
                                timeout_minutes=15):  # fmt: skip
                    seen["probe"] = "free"
            except StageLocked:
                seen["probe"] = "locked"
            seen["record"] = _record(moto_server)
            seen["canary"] = alias(moto_server)
            raise KeyboardInterrupt  # Ctrl-C right here

        mp.setattr(scarab.cli, "_print_deployed", between)
        got = runner.invoke(app, ["deploy", "--canary", "10", "--bake", "30"])
        assert seen.get("canary", ("", {}))[1], ("the canary never started", got.output)
        yield Interrupted(
            got.exit_code, got.output, seen["probe"], seen["record"], _record(moto_server),
            before, alias(moto_server),
        )  # fmt: skip


def test_the_lock_is_held_from_the_deploy_through_the_bake(interrupted: Interrupted) -> None:
    assert interrupted.lock_probe == "locked"
    assert interrupted.record_at_probe is not None and '"command": "deploy"' in (
        interrupted.record_at_probe
    )
    assert interrupted.record_after is None  # released at the end all the same


def test_ctrl_c_before_the_bake_watches_rolls_the_canary_back(interrupted: Interrupted) -> None:
    assert interrupted.exit_code == 130, interrupted.output
    assert interrupted.alias_after == (interrupted.alias_before[0], {})
    assert "SIGINT before the bake began: the canary was rolled back." in interrupted.output


@pytest.mark.parametrize(
    ("lock", "argv", "says"),
    [
        (
            "",
            ["--bake", "601"],
            "--bake 601 s is too long for the stage lock: [lock] timeout_minutes is 15 min",
        ),
        ("", ["--bake", "601"], "(at most 600 s)"),
        ("[lock]\ntimeout_minutes = 9\n", [], "--bake 300 s is too long"),  # the default bake
        ("[lock]\ntimeout_minutes = 9\n", [], "timeout_minutes is 9 min"),
        ("[lock]\ntimeout_minutes = 5\n", ["--bake", "1"], "(none at all)"),
    ],
)
def test_a_bake_the_lock_would_not_outlast_is_refused_before_any_change(
    aws, tmp_path: Path, monkeypatch, lock: str, argv: list[str], says: str
) -> None:
    monkeypatch.chdir(_project(tmp_path / "proj", CONFIG + lock))
    result = CliRunner().invoke(app, ["deploy", "--canary", "10", *argv])
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())
    assert client("lambda", aws).list_functions()["Functions"] == []


def test_a_bake_that_ends_in_time_is_accepted(aws, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(_project(tmp_path / "proj"))
    result = CliRunner().invoke(app, ["deploy", "--canary", "10", "--bake", "600", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "too long" not in result.output
    assert ANALYZE not in [
        f["FunctionName"] for f in client("lambda", aws).list_functions()["Functions"]
    ]
