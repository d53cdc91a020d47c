"""Several containers' first writes to a fresh database at the same moment (real
processes, on each engine): each of them migrates or waits for the one that does, and
every row is written; the database ends at HEAD."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from lens.log import migrate

from tests.deploy.conftest import REPO
from tests.log.test_writer import _rows

WRITERS = 6
_WRITER = """
import json, sys, time
from pathlib import Path
sys.path[:0] = [{lambda_dir!r}, {repo!r}]
from lens import log
from lens.log import migrate, writer  # imported before the start: they all start at once
import alembic.command
from tests.log.rows import sample_row
go = Path({go!r})
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
print(json.dumps(log.write(sample_row(request_id=sys.argv[1]), {url!r})))
"""


def test_first_writes_at_once_all_land(db_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = _WRITER.format(lambda_dir=str(REPO / "lambda"), repo=str(REPO), go=str(go), url=db_url)
    procs = [
        subprocess.Popen([sys.executable, "-c", code, f"w-{i}"], stdout=subprocess.PIPE, text=True)
        for i in range(WRITERS)
    ]
    go.touch()
    results = []
    outputs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        outputs.append(out)
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results == [True] * WRITERS, outputs
    assert sorted(r["request_id"] for r in _rows(db_url)) == [f"w-{i}" for i in range(WRITERS)]
    engine = sa.create_engine(db_url)
    try:
        assert migrate.current_revision(engine) == migrate.HEAD
    finally:
        engine.dispose()
