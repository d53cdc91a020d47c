"""`scarab predictions --local` on a damaged file, an absurd --since, and a log whose
cells begin like spreadsheet formulas (a model name comes from the request's path)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from lens.log.writer import Writer
from scarab.cli import app
from scarab.predictions import local_database
from typer.testing import CliRunner

from tests.log.rows import sample_row
from tests.log.test_predictions_cli import _now


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["predictions", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "scarab.toml").write_text('app = "scarab"\nstage = "dev"\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("content", [b"\x00garbage" * 600, b"SQLite format 3\x00" + b"x" * 100])
def test_a_corrupt_log_file_is_a_clear_error(project: Path, content: bytes) -> None:
    path = local_database(project)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    code, output = _cli("--local")
    assert code == 1, output
    assert "cannot be read" in output and str(path) in output
    assert path.read_bytes() == content  # left as it was


def test_an_absurd_since_is_a_usage_error(project: Path) -> None:
    Writer(f"sqlite:///{local_database(project)}").write(sample_row(at=_now()))
    code, output = _cli("--local", "--since", "99999999999999999999d")
    assert code == 2 and "--since" in output, output


def test_csv_cells_never_start_a_formula(project: Path) -> None:
    writer = Writer(f"sqlite:///{local_database(project)}")
    evil = '=HYPERLINK("http://evil.example","x")'
    writer.write(sample_row(at=_now(), model=evil, status=404, error_code="unknown_model"))
    writer.close()
    code, output = _cli("--local", "--csv")
    assert code == 0, output
    (row,) = list(csv.DictReader(io.StringIO(output)))
    assert row["model"] == "'" + evil  # shown as text by a spreadsheet
    assert row["latency_ms"] == "12.5" and row["status"] == "404"  # numbers untouched
