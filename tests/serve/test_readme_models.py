"""The README's `scarab models ...` block, run line by line with the real `scarab` CLI
(`--local`, against a running `scarab serve`), each line checked for what its comment says.

The commands are read from README.md itself; the files they name (churn.joblib,
churn-2.joblib, recent.csv) are made here in the project directory, so every command
runs exactly as written. `[--json]` runs both forms. A README line this test has no
check for fails the test, so the block cannot grow an unchecked example.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import joblib
import pytest
from lens.predict.sources import ALIASES_VERSION
from scarab.naming import Names

from tests.deploy.test_forecast_data import shifted
from tests.serve.support import emulator_url, http, make_project
from tests.serve.test_readme import _FENCE, README
from tests.serve.test_registry import TOML, StartServe, train_churn
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, scarab_cli

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]

NAMES = Names("scarab", "dev")  # the app and stage of DEFAULT_TOML
ACCOUNT, REGION = "123456789012", "us-east-1"  # the embedded emulator's
BUCKET = NAMES.models_bucket(ACCOUNT, REGION)


@dataclass
class Line:
    """One line of the README block: the command (argv) and what its comment says."""

    number: int  # 1-based line of README.md
    command: str
    argv: list[str]
    comment: str


def models_block(text: str) -> list[Line]:
    """The one code block of README.md whose lines are all `scarab models ...` commands."""
    blocks: list[list[Line]] = []
    current: list[tuple[int, str]] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            if current is None:
                current = []
                continue
            lines = [(n, t) for n, t in current if t.strip()]
            if lines and all(t.startswith("scarab models ") for _, t in lines):
                blocks.append([_line(n, t) for n, t in lines])
            current = None
        elif current is not None:
            current.append((number, line))
    assert len(blocks) == 1, f"expected one `scarab models` block in README.md, got {len(blocks)}"
    return blocks[0]


def _line(number: int, text: str) -> Line:
    parts = re.split(r"\s#\s", text, maxsplit=1)
    command, comment = parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")
    assert comment, f"README.md:{number}: the command says nothing about what it does"
    argv = shlex.split(command)
    assert argv[:2] == ["scarab", "models"], f"README.md:{number}: {command!r}"
    return Line(number, " ".join(command.split()), argv, comment)


def forms(argv: list[str]) -> list[list[str]]:
    """The command lines `argv` stands for: `[--json]` is one without and one with it."""
    if "[--json]" not in argv:
        return [argv]
    plain = [a for a in argv if a != "[--json]"]
    return [plain, [*plain, "--json"]]


class Registry:
    """The stage's registry table, read straight from serve's emulator."""

    def __init__(self, project: Path) -> None:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        self.ddb = session.client("dynamodb", endpoint_url=emulator_url(project))
        self.s3 = session.client("s3", endpoint_url=emulator_url(project))

    def item(self, name: str, version: str) -> dict[str, Any] | None:
        key = {"name": {"S": name}, "version": {"S": version}}
        got = self.ddb.get_item(TableName=NAMES.registry_table, Key=key)
        item: dict[str, Any] | None = got.get("Item")
        return item

    def aliases(self, name: str) -> dict[str, Any]:
        item = self.item(name, ALIASES_VERSION)
        assert item is not None, f"{name} has no aliases"
        got: dict[str, Any] = {
            "live": item["live"]["S"],
            "history": [v["S"] for v in item["history"]["L"]],
        }
        if "candidate" in item:
            got["candidate"] = (item["candidate"]["S"], float(item["candidate_weight"]["N"]))
        return got

    def artifacts(self) -> set[str]:
        got = self.s3.list_objects_v2(Bucket=BUCKET, ExpectedBucketOwner=ACCOUNT)
        return {o["Key"] for o in got.get("Contents", [])}


@dataclass
class Run:
    """What one README command did."""

    line: Line
    results: list[subprocess.CompletedProcess[str]]  # one per form
    project: Path
    serve: ServeProcess
    registry: Registry

    @property
    def result(self) -> subprocess.CompletedProcess[str]:
        return self.results[-1]

    def ok(self) -> str:
        for argv, result in zip(forms(self.line.argv), self.results, strict=True):
            assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout}\n{result.stderr}"
        return self.result.stdout

    def refused(self) -> str:
        """The message of a command that refuses (exit 2, a message, no traceback)."""
        result = self.result
        assert result.returncode == 2, f"{self.line.command}:\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return " ".join(result.stderr.split())

    def listed(self) -> dict[str, list[str]]:
        """churn's versions and their aliases, as `scarab models list --json` shows them."""
        result = scarab_cli(self.project, "models", "list", "--json", "--local", check=True)
        rows = json.loads(result.stdout)["models"]
        return {r["version"]: r["aliases"] for r in rows if r["name"] == "churn"}


def _pushed_one(run: Run) -> None:
    out = run.ok()
    assert "Converted scikit-learn Pipeline(StandardScaler, LogisticRegression) to ONNX" in out
    assert run.registry.aliases("churn") == {"live": "1", "history": []}  # 1 is live
    assert run.listed() == {"1": ["live"]}


def _listed(run: Run) -> None:
    text, as_json = (r.stdout for r in run.results)
    assert text.splitlines()[0].split() == [
        "NAME", "VERSION", "KIND", "ALIASES", "SHA256", "CREATED", "METRICS",
    ]  # fmt: skip
    (row,) = [r for r in json.loads(as_json)["models"] if r["name"] == "churn"]
    assert set(row) == {"name", "version", "kind", "aliases", "sha256", "created_at", "metrics"}
    assert (row["version"], row["kind"], row["aliases"]) == ("1", "tabular-classifier", ["live"])
    (churn_line,) = [ln for ln in text.splitlines() if ln.startswith("churn ")]
    short = row["sha256"][:12]
    assert churn_line.split()[:5] == ["churn", "1", "tabular-classifier", "live", short]


def _pushed_two(run: Run) -> None:
    run.ok()
    assert run.registry.item("churn", "2") is not None
    assert run.listed() == {"1": ["live"], "2": []}  # pushed, not live yet


def _promoted(run: Run) -> None:
    assert "churn 2 is live (was 1)." in run.ok()
    assert run.registry.aliases("churn") == {"live": "2", "history": ["1"]}  # 1 kept


def _rolled_back(run: Run) -> None:
    assert "churn 1 is live again (was 2)." in run.ok()
    assert run.registry.aliases("churn") == {"live": "1", "history": []}


def _split(run: Run) -> None:
    assert "churn 2 gets 30% of requests, 1 the rest." in run.ok()
    assert run.registry.aliases("churn") == {"live": "1", "history": [], "candidate": ("2", 30.0)}
    assert run.listed() == {"1": ["live"], "2": ["candidate:30"]}


def _rm_live_refused(run: Run) -> None:
    assert "churn 1 is live; promote another version before removing it." in run.refused()
    assert run.registry.item("churn", "1") is not None


def _rm_candidate_refused(run: Run) -> None:
    assert "churn 2 is the candidate of a split; end it first" in run.refused()
    assert run.registry.item("churn", "2") is not None


def _split_ended(run: Run) -> None:
    assert "The split of churn ended: 1 gets every request." in run.ok()
    assert run.registry.aliases("churn") == {"live": "1", "history": []}
    assert run.listed() == {"1": ["live"], "2": []}


def _removed(run: Run) -> None:
    out = " ".join(run.ok().split())
    found = re.search(r"Removed churn 2 and its artifact (models/churn/[0-9a-f]{64}\.onnx)", out)
    assert found, out
    assert run.registry.item("churn", "2") is None
    one = run.registry.item("churn", "1")
    assert one is not None and one["artifact_uri"]["S"] != f"s3://{BUCKET}/{found.group(1)}"
    assert found.group(1) not in run.registry.artifacts()
    assert run.listed() == {"1": ["live"]}


def _pushed_data(run: Run) -> None:
    run.ok()
    recent = (run.project / "recent.csv").read_bytes()
    uri = f"s3://{BUCKET}/data/bikes-3h/{hashlib.sha256(recent).hexdigest()}.csv"
    live = run.registry.aliases("bikes-3h")["live"]
    item = run.registry.item("bikes-3h", live)
    assert item is not None and item["data_uri"] == {"S": uri}
    # GET /forecast forecasts from them, without a redeploy (the stage's cache is 1 s).
    headers = {"x-api-key": run.serve.api_key or ""}

    def from_recent() -> bool:
        resp = http(f"{run.serve.api_url}/forecast/bikes-3h", headers=headers)
        return resp.status == 200 and resp.json()["observed_until"] == "2013-01-07T23:00:00"

    wait_until(from_recent, timeout=30, what="the forecast from the pushed observations")


# What each README command must do, by the command as the README writes it.
CHECKS: dict[str, Callable[[Run], None]] = {
    "scarab models push churn.joblib --name churn --version 1 --promote": _pushed_one,
    "scarab models list [--json]": _listed,
    "scarab models push churn-2.joblib --name churn --version 2": _pushed_two,
    "scarab models promote churn 2": _promoted,
    "scarab models rollback churn": _rolled_back,
    "scarab models split churn 2 --weight 30": _split,
    "scarab models rm churn 1": _rm_live_refused,
    "scarab models rm churn 2": _rm_candidate_refused,
    "scarab models split churn 2 --weight 0": _split_ended,
    "scarab models push-data bikes-3h recent.csv": _pushed_data,
}
# A command the block runs twice does something else the second time.
SECOND_TIME: dict[str, Callable[[Run], None]] = {"scarab models rm churn 2": _removed}
# What the README's comment on each command says, in the order the block runs them: the
# checks above verify these claims, so a comment that changes must change its check too.
SAYS: list[tuple[str, str]] = [
    ("scarab models push churn.joblib --name churn --version 1 --promote",
     "or an .onnx file; 1 is live"),
    ("scarab models list [--json]", "name, version, kind, aliases, sha256, created, metrics"),
    ("scarab models push churn-2.joblib --name churn --version 2", "pushed, not live yet"),
    ("scarab models promote churn 2", "live -> 2 (1 is kept in the history)"),
    ("scarab models rollback churn", "live -> the previous live version, 1"),
    ("scarab models split churn 2 --weight 30", "2 answers 30 % of requests, live 1 the rest"),
    ("scarab models rm churn 1", "refused: 1 is live"),
    ("scarab models rm churn 2", "refused: 2 is the candidate of the split"),
    ("scarab models split churn 2 --weight 0", "ends the split: live 1 answers every request"),
    ("scarab models rm churn 2", "removes 2 and its artifact"),
    ("scarab models push-data bikes-3h recent.csv", "a forecaster's recent observations"),
]  # fmt: skip


def drift(lines: list[Line]) -> list[str]:
    """How the README block differs from what this test checks (empty: not at all)."""
    problems = [
        f"README.md:{line.number}: no check for {line.command!r}"
        for line in lines
        if line.command not in CHECKS
    ]
    said = [(line.command, " ".join(line.comment.split())) for line in lines]
    if said != SAYS:
        problems.append(f"the block says {said}, the checks verify {SAYS}")
    return problems


def test_the_block_is_read_from_the_readme() -> None:
    lines = models_block(README.read_text())
    assert len(lines) >= 8
    assert not drift(lines)
    commands = [line.command for line in lines]
    assert "scarab models list [--json]" in commands
    assert forms(shlex.split("scarab models list [--json]")) == [
        ["scarab", "models", "list"],
        ["scarab", "models", "list", "--json"],
    ]
    parsed = _line(1, "scarab models rm churn 1   # refused: 1 is live")
    assert (parsed.argv, parsed.comment) == (
        ["scarab", "models", "rm", "churn", "1"],
        "refused: 1 is live",
    )


def test_the_readme_models_block_runs_as_its_comments_say(
    tmp_path: Path, serve_factory: StartServe
) -> None:
    lines = models_block(README.read_text())
    project = make_project(tmp_path / "p", toml=TOML, web=False)
    serve = serve_factory(project, env={"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None})
    # The files the README names, made where the commands run.
    joblib.dump(train_churn(1.0)[0], project / "churn.joblib")
    joblib.dump(train_churn(0.01)[0], project / "churn-2.joblib")
    (project / "recent.csv").write_text(shifted(days=7, factor=3))
    registry = Registry(project)
    seen: set[str] = set()
    for line in lines:
        check = CHECKS[line.command]
        if line.command in seen:
            check = SECOND_TIME[line.command]
        seen.add(line.command)
        results = [scarab_cli(project, *argv[1:], "--local") for argv in forms(line.argv)]
        check(Run(line, results, project, serve, registry))
