"""README's "Prediction log" section is what works: its `scarab predictions` lines run with
the real CLI over a log the function's writer filled, its SQL runs on every engine, and
its table of predictions_hourly's columns is the view's (on every engine)."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from lens.log.schema import HOURLY_VIEW
from lens.log.writer import Writer
from scarab.cli import app
from scarab.predictions import local_database
from typer.testing import CliRunner

from tests.log.rows import sample_row

README = Path(__file__).resolve().parents[2] / "README.md"


def section(heading: str = "## Prediction log") -> str:
    """The README text from `heading` to the next second-level heading."""
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def blocks(lang: str = "") -> list[str]:
    """The section's fenced code blocks of language `lang` ("" for none)."""
    return re.findall(rf"^```{lang}\n(.*?)^```$", section(), flags=re.MULTILINE | re.DOTALL)


def commands(prefix: str) -> list[list[str]]:
    """argv of every line starting with `prefix` in the section's plain code blocks,
    without the comment after it."""
    out = []
    for block in blocks():
        for line in block.splitlines():
            if line.startswith(prefix):
                out.append(shlex.split(line, comments=True))
    return out


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def test_the_scarab_predictions_lines_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "scarab.toml").write_text('app = "scarab"\nstage = "dev"\n')
    writer = Writer(f"sqlite:///{local_database(tmp_path)}")
    writer.write(sample_row(at=_now() - timedelta(minutes=3), request_id="d-1"))
    writer.write(sample_row(at=_now() - timedelta(minutes=2), request_id="a-1", route="/analyze",
                            model="gemini-3.5-flash"))  # fmt: skip
    writer.close()
    monkeypatch.chdir(tmp_path)
    lines = commands("scarab predictions")
    assert len(lines) == 3, lines
    for argv in lines:
        result = CliRunner().invoke(app, argv[1:])
        assert result.exit_code == 0, (argv, result.output)
        if "--json" in argv:  # --route predict --model digits
            assert [r["request_id"] for r in json.loads(result.output)] == ["d-1"]
        elif "--csv" in argv:
            assert result.output.splitlines()[0].startswith("id,at,stage,request_id,route")
            assert len(result.output.splitlines()) == 3
        else:
            assert "a-1" not in result.output and "/analyze" in result.output


def _documented_columns() -> list[str]:
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", section(), flags=re.MULTILINE)
    return rows


def test_the_view_has_the_documented_columns_and_the_query_runs(db_url: str) -> None:
    writer = Writer(db_url)
    at = datetime(2026, 12, 1, 10, 5)
    for i, latency in enumerate((10.0, 20.0, 30.0, 40.0)):
        writer.write(sample_row(at=at + timedelta(minutes=i), latency_ms=latency,
                                status=500 if i == 3 else 200, cache="hit" if i == 0 else None,
                                request_id=f"r-{i}"))  # fmt: skip
    writer.write(sample_row(at=at + timedelta(hours=1), request_id="later"))
    columns = [c["name"] for c in sa.inspect(writer.engine).get_columns(HOURLY_VIEW)]
    assert columns == _documented_columns()
    (query,) = blocks("sql")
    with writer.engine.connect() as connection:
        got = [tuple(r) for r in connection.execute(sa.text(query))]
    writer.close()
    assert len(got) == 2
    hour, route, model, requests, errors, p95 = got[1]  # ORDER BY hour DESC
    assert str(hour).startswith("2026-12-01 10:00")
    assert (route, model, requests, errors) == ("/predict/{model_id}", "digits", 4, 1)
    if writer.engine.dialect.name == "sqlite":
        assert p95 is None  # no percentile function
    else:
        assert float(p95) == pytest.approx(38.5)  # continuous: 30 + 0.85 * (40 - 30)
