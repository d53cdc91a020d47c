"""`scarab serve` logs every /analyze, /predict and /forecast answer to
.scarab/local/predictions.db (SQLite) with no set-up, through the function's own writer;
with `[log] enabled = false` it writes nothing. Through a real serve process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from lens.log.schema import predictions
from lens.settings import DEFAULT_MODELS

from tests.predict.drawing import b64 as digit_b64
from tests.predict.drawing import draw_digit
from tests.serve.conftest import serve_env
from tests.serve.support import DEFAULT_TOML, http, make_project, tiny_jpeg_b64
from tests.support.gemini_server import GeminiServer
from tests.support.serve_process import ServeProcess, serve_factory

pytestmark = [pytest.mark.emulator, pytest.mark.slow]
__all__ = ["serve_factory"]

DB = Path(".scarab") / "local" / "predictions.db"


def rows(path: Path) -> list[dict[str, Any]]:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            result = connection.execute(sa.select(predictions).order_by(predictions.c.id))
            return [dict(r._mapping) for r in result]
    finally:
        engine.dispose()


def _traffic(serve: ServeProcess) -> list[tuple[str, int, str | None]]:
    """/analyze, /predict (a hit and an unknown model), /forecast, and a route that is
    not logged; each answer's (path, status, X-Cache header)."""
    headers = {"x-api-key": serve.api_key or "", "Content-Type": "application/json"}
    calls = [
        ("/analyze", "POST", {"image": tiny_jpeg_b64(), "speed": "fast"}),
        ("/predict/digits", "POST", {"image": digit_b64(draw_digit(4))}),
        ("/predict/nope", "POST", {"image": digit_b64(draw_digit(4))}),
        ("/forecast/bikes-1h", "GET", None),
        ("/models", "GET", None),
    ]
    out = []
    for path, method, body in calls:
        data = json.dumps(body).encode() if body is not None else None
        resp = http(f"{serve.api_url}{path}", method, data, headers)
        out.append((path, resp.status, resp.headers.get("x-cache")))
    return out


def test_serve_logs_each_answer_to_its_sqlite_file(
    tmp_path: Path,
    gemini_session_server: GeminiServer,
    serve_factory: Callable[..., ServeProcess],
) -> None:
    project = make_project(tmp_path / "proj", web=False)
    serve = serve_factory(project, env=serve_env(gemini_session_server))
    answers = _traffic(serve)
    assert [a[1] for a in answers] == [200, 200, 404, 200, 200], serve.output()
    got = rows(project / DB)
    assert [(r["route"], r["model"], r["status"], r["error_code"]) for r in got] == [
        ("/analyze", DEFAULT_MODELS["fast"], 200, None),
        ("/predict/{model_id}", "digits", 200, None),
        ("/predict/{model_id}", "nope", 404, "unknown_model"),
        ("/forecast/{model_id}", "bikes-1h", 200, None),
    ], got
    # The cache state is what the answer said in X-Cache (none without a cache).
    expected_cache = [(h or "").lower() or None for _, _, h in answers[:4]]
    assert [r["cache"] for r in got] == expected_cache
    analyze, digits = got[0], got[1]
    assert analyze["stage"] == "dev" and analyze["tokens_in"] and analyze["latency_ms"] > 0
    assert digits["model_version"] and json.loads(digits["output"])["label"] == 4
    assert all(r["input"] is None for r in got)  # [log] store_inputs is off


def test_log_enabled_false_writes_nothing(
    tmp_path: Path,
    gemini_session_server: GeminiServer,
    serve_factory: Callable[..., ServeProcess],
) -> None:
    project = make_project(
        tmp_path / "proj", DEFAULT_TOML + "\n[log]\nenabled = false\n", web=False
    )
    serve = serve_factory(project, env=serve_env(gemini_session_server))
    assert [a[1] for a in _traffic(serve)] == [200, 200, 404, 200, 200], serve.output()
    assert not (project / DB).exists()
