"""`scarab predictions --local`: the SQLite log `scarab serve` writes, read through the
function's table definition, filtered by --since, --model, --route, --limit and the
stage, printed as a table, --json or --csv."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lens.log.writer import Writer
from scarab.cli import app
from scarab.predictions import local_database
from typer.testing import CliRunner

from tests.log.rows import sample_row


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose local log holds five rows: four recent, one from two hours ago,
    one of another stage."""
    (tmp_path / "scarab.toml").write_text('app = "scarab"\nstage = "dev"\n')
    writer = Writer(f"sqlite:///{local_database(tmp_path)}")
    now = _now()
    for row in (
        sample_row(at=now - timedelta(hours=2), request_id="old"),
        sample_row(at=now - timedelta(minutes=30), request_id="p-1"),
        sample_row(
            at=now - timedelta(minutes=20), request_id="a-1", route="/analyze",
            model="gemini-3.5-flash", model_version="gemini-3.5-flash", tokens_in=120,
            tokens_out=40, output='{"summary": "a beetle"}',
        ),
        sample_row(
            at=now - timedelta(minutes=10), request_id="p-2", model="nope", status=404,
            error_code="unknown_model", output=None, model_version=None,
        ),
        sample_row(at=now - timedelta(minutes=5), request_id="f-1", route="/forecast/{model_id}",
                   model="bikes-1h"),
        sample_row(at=now - timedelta(minutes=1), request_id="other-stage", stage="prod"),
    ):  # fmt: skip
        writer.write(row)
    writer.close()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["predictions", *args])
    return result.exit_code, result.output


def _ids(output: str) -> list[str]:
    return [row["request_id"] for row in json.loads(output)]


def test_json_is_the_stages_last_hour_newest_first(project: Path) -> None:
    code, output = _cli("--local", "--json")
    assert code == 0, output
    assert _ids(output) == ["f-1", "p-2", "a-1", "p-1"]
    analyze = json.loads(output)[2]
    assert analyze["route"] == "/analyze" and analyze["tokens_in"] == 120
    assert analyze["at"].endswith("Z") and "input_digest" in analyze


def test_filters(project: Path) -> None:
    assert _ids(_cli("--local", "--json", "--since", "3h")[1])[-1] == "old"
    assert _ids(_cli("--local", "--json", "--model", "nope")[1]) == ["p-2"]
    assert _ids(_cli("--local", "--json", "--route", "predict")[1]) == ["p-2", "p-1"]
    assert _ids(_cli("--local", "--json", "--route", "/forecast/{model_id}")[1]) == ["f-1"]
    assert _ids(_cli("--local", "--json", "--limit", "2")[1]) == ["f-1", "p-2"]
    assert _ids(_cli("--local", "--json", "--stage", "prod")[1]) == ["other-stage"]
    assert _ids(_cli("--local", "--json", "--model", "none-such")[1]) == []


def test_csv_has_every_column(project: Path) -> None:
    code, output = _cli("--local", "--csv", "--route", "analyze")
    assert code == 0, output
    (row,) = list(csv.DictReader(io.StringIO(output)))
    assert row["request_id"] == "a-1" and row["tokens_out"] == "40"
    assert row["error_code"] == "" and json.loads(row["output"]) == {"summary": "a beetle"}
    assert {"at", "stage", "input_digest", "latency_ms", "cache"} <= set(row)


def test_text_table(project: Path) -> None:
    code, output = _cli("--local", "--model", "nope")
    assert code == 0, output
    header, line = output.strip().splitlines()
    assert header.split() == [
        "at", "route", "model", "model_version", "status", "error_code", "latency_ms", "cache",
        "tokens_in", "tokens_out",
    ]  # fmt: skip
    assert "/predict/{model_id}" in line and "404" in line and "unknown_model" in line
    assert _cli("--local", "--model", "none-such")[1].strip() == "No predictions match."


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--local", "--region", "us-east-1"), "--local reads the local file"),
        (("--local", "--route", "stats"), "the logged routes are /analyze"),
        (("--local", "--since", "yesterday"), "--since 'yesterday'"),
        (("--local", "--limit", "0"), "--limit 0"),
        (("--local", "--json", "--csv"), "at most one of --json and --csv"),
    ],
)
def test_usage_errors_exit_2(project: Path, args: tuple[str, ...], says: str) -> None:
    code, output = _cli(*args)
    assert code == 2 and says in output, output


def test_no_local_log_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = _cli("--local")
    assert code == 1 and "no local prediction log" in output and "scarab serve" in output
    assert not local_database(tmp_path).exists()  # reading never creates it
