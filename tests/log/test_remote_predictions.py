"""`scarab predictions` for a stage in AWS: read by the stage's function through a direct
lambda:Invoke event (lens.log.remote), answered with the same query --local runs
(lens.log.query), and unreachable from HTTP: an API Gateway or Function URL event is
always answered as an HTTP request, whatever it carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lens import log as prediction_log
from lens.log.writer import Writer
from scarab.cli import app
from scarab.predictions import local_database
from typer.testing import CliRunner

from tests.function.events import EVENT_BUILDERS, FakeContext
from tests.log.rows import sample_row
from tests.support.lambda_invoke import invoke_endpoint

FUNCTION = "scarab-dev-analyze"  # the function `scarab predictions` asks (app scarab, stage dev)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project, and a log the function reads (SQLite, as serve's workers do): six rows
    of stage dev, one old, one of stage prod."""
    (tmp_path / "scarab.toml").write_text('app = "scarab"\nstage = "dev"\n')
    path = local_database(tmp_path)
    writer = Writer(f"sqlite:///{path}")
    now = _now()
    for row in (
        sample_row(at=now - timedelta(hours=2), request_id="old"),
        sample_row(at=now - timedelta(minutes=30), request_id="p-1"),
        sample_row(at=now - timedelta(minutes=20), request_id="a-1", route="/analyze",
                   model="gemini-3.5-flash", tokens_in=120, tokens_out=40),
        sample_row(at=now - timedelta(minutes=10), request_id="p-2", model="nope", status=404,
                   error_code="unknown_model", output=None),
        sample_row(at=now - timedelta(minutes=5), request_id="f-1", route="/forecast/{model_id}",
                   model="bikes-1h"),
        sample_row(at=now - timedelta(minutes=1), request_id="other-stage", stage="prod"),
    ):  # fmt: skip
        writer.write(row)
    writer.close()
    prediction_log.reset()
    monkeypatch.setenv("SCARAB_LOG_ENABLED", "true")
    monkeypatch.setenv("SCARAB_STAGE", "dev")
    monkeypatch.setenv("SCARAB_LOG_LOCAL_URL", f"sqlite:///{path}")
    monkeypatch.delenv("PREDICTION_DB_URL_PARAM", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    prediction_log.reset()


def _handler() -> Any:
    from lens.entry.analyze import lambda_handler

    return lambda_handler


def _direct(**fields: Any) -> dict[str, Any]:
    return dict(_handler()({"scarab": "predictions", **fields}, FakeContext()))


def _ids(answer: dict[str, Any]) -> list[str]:
    return [row["request_id"] for row in answer["rows"]]


def test_the_function_answers_the_stages_rows_newest_first(project: Path) -> None:
    answer = _direct(since=3600, limit=50)
    assert _ids(answer) == ["f-1", "p-2", "a-1", "p-1"]  # its own stage only, the last hour
    assert answer["truncated"] is False
    assert answer["columns"][:3] == ["id", "at", "stage"] and "input_digest" in answer["columns"]
    analyze = answer["rows"][2]
    assert analyze["at"].endswith("Z") and analyze["tokens_in"] == 120
    assert _ids(_direct(since=3 * 3600))[-1] == "old"
    assert _ids(_direct(since=None))[-1] == "old"
    assert _ids(_direct(model="nope")) == ["p-2"]
    assert _ids(_direct(route="/predict/{model_id}")) == ["p-2", "p-1"]
    assert _ids(_direct(limit=2)) == ["f-1", "p-2"]


def test_one_query_for_local_and_remote(project: Path) -> None:
    """--local and the function print the very same rows (one implementation)."""
    local = CliRunner().invoke(app, ["predictions", "--local", "--json", "--since", "3h"])
    assert local.exit_code == 0, local.output
    assert json.loads(local.output) == _direct(since=3 * 3600)["rows"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"limit": 0}, "limit is a whole number from 1 to 1000"),
        ({"limit": 1001}, "limit is a whole number from 1 to 1000"),
        ({"limit": "5"}, "limit is a whole number"),
        ({"since": -1}, "since is a positive number"),
        ({"since": "1h"}, "since is a positive number"),
        ({"route": "/stats"}, "route is one of /analyze, /predict/{model_id}"),
        ({"model": ""}, "model is a model's name"),
        ({"stage": "prod"}, "unknown fields stage"),
    ],
)
def test_bad_requests_are_refused(project: Path, fields: dict[str, Any], says: str) -> None:
    answer = _direct(**fields)
    assert answer["error"]["code"] == "bad_request" and says in answer["error"]["message"]
    assert "rows" not in answer


def test_other_direct_events_are_refused(project: Path) -> None:
    refused = _handler()({"scarab": "drop-tables"}, FakeContext())
    assert refused == {
        "error": {
            "code": "unknown_request",
            "message": "this function answers only {'scarab': 'predictions'}",
        }
    }
    # An event that is neither HTTP nor scarab's: the 400 it always got.
    other = _handler()({"hello": "world"}, FakeContext())
    assert other["statusCode"] == 400 and "invalid_event" in other["body"]


def test_the_log_off_is_said(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCARAB_LOG_ENABLED", "false")
    answer = _direct()
    assert answer["error"]["code"] == "log_off" and "rows" not in answer


@pytest.mark.parametrize("kind", ["rest", "http", "url"])
def test_an_http_request_never_reads_the_log(project: Path, kind: str) -> None:
    """Whatever an HTTP caller sends (the direct event as its body, as a query, on any
    path), API Gateway and Function URLs deliver an HTTP event, answered as HTTP."""
    direct = {"scarab": "predictions", "since": None, "limit": 1000}
    builder = EVENT_BUILDERS[kind]
    for event in (
        builder(method="POST", path="/analyze", body=direct),
        builder(method="GET", path="/health", body=direct, query={"scarab": "predictions"}),
        builder(method="POST", path="/", body=direct),
    ):
        event = {**event, "scarab": "predictions"}  # even at the event's top level
        context = FakeContext()
        answer = _handler()(event, context)
        assert isinstance(answer.get("statusCode"), int), answer
        # The answer names its own (random uuid) request id, which may well contain
        # "a-1" or "f-1": only the logged rows' ids count.
        text = json.dumps(answer).replace(context.aws_request_id, "<own id>")
        assert "rows" not in answer and '\\"rows\\"' not in text, answer
        assert not [rid for rid in ("p-1", "p-2", "a-1", "f-1", "old") if rid in text], answer


def _function_log_line(line: str) -> bool:
    """A line the handler logged (its EMF metrics, Powertools' JSON log lines): it runs in
    this process, so they share the CLI's captured stdout (on AWS they go to CloudWatch)."""
    try:
        item = json.loads(line)
    except ValueError:
        return False
    return isinstance(item, dict) and ("_aws" in item or "level" in item)


def _cli(endpoint: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["predictions", "--endpoint-url", endpoint, "--region", "us-east-1", *args]
    )
    lines = [line for line in result.output.splitlines() if not _function_log_line(line)]
    return result.exit_code, "\n".join(lines)


def test_the_cli_reads_through_lambda_invoke(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scarab predictions` (no --local): boto3's lambda:Invoke over HTTP to an Invoke
    endpoint running the real handler (tests/support/lambda_invoke.py)."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    with invoke_endpoint({FUNCTION: _handler()}, FakeContext) as (url, received):
        code, output = _cli(url, "--json", "--route", "predict", "--since", "3h")
        assert code == 0, output
        assert [r["request_id"] for r in json.loads(output)] == ["p-2", "p-1", "old"]
        assert received[-1] == {
            "scarab": "predictions", "since": 10800.0, "limit": 50, "route": "/predict/{model_id}",
        }  # fmt: skip
        code, output = _cli(url)
        assert code == 0 and "/forecast/{model_id}" in output.splitlines()[1], output
        code, output = _cli(url, "--csv", "--limit", "1")
        assert code == 0 and output.splitlines()[1].split(",")[3] == "f-1", output
        # The function refuses: the CLI says why, exit 1.
        code, output = _cli(url, "--limit", "5000")
        assert code == 1 and "limit is a whole number from 1 to 1000" in output, output
        monkeypatch.setenv("SCARAB_LOG_ENABLED", "false")
        code, output = _cli(url)
        assert code == 1 and "prediction log is off" in output and "log_off" in output, output
        # A stage with no such function.
        code, output = _cli(url, "--stage", "prod")
        assert code == 1 and "no function scarab-prod-analyze" in output, output
