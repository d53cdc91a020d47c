"""`scarab predictions`: read the stage's prediction log.

With --local: the SQLite file `scarab serve` writes (.scarab/local/predictions.db),
through SQLAlchemy and the function's own table definition (lens.log.schema), so the
columns are never restated here. Without --local: through the stage's function
(lambda:Invoke with a direct event, lens.log.remote), which reaches a database inside a
VPC; both run lens.log.query.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scarab import layout
from scarab.aws import Aws, aws_errors, call
from scarab.errors import EXIT_USAGE, ScarabError
from scarab.logs import parse_since

# The logged routes as the log records them (lens.log.LOGGED_RULES, in API form).
ROUTES = ("/analyze", "/predict/{model_id}", "/forecast/{model_id}")
# What the text table shows of a row (--json and --csv give every column).
TEXT_COLUMNS = (
    "at", "route", "model", "model_version", "status", "error_code", "latency_ms", "cache",
    "tokens_in", "tokens_out",
)  # fmt: skip
DEFAULT_LIMIT = 50


class UsageError(ScarabError):
    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Query:
    stage: str
    since_s: float | None = 3600.0
    model: str | None = None
    route: str | None = None
    limit: int = DEFAULT_LIMIT


def local_database(project_dir: Path) -> Path:
    """The SQLite file `scarab serve` logs to."""
    return project_dir / layout.PREDICTIONS_DB


def route_named(text: str) -> str:
    """The logged route `text` names: the route itself or its first word
    (analyze, /predict, predict/{model_id})."""
    wanted = text.strip().strip("/").split("/")[0].lower()
    for route in ROUTES:
        if route.strip("/").split("/")[0] == wanted:
            return route
    raise UsageError(f"--route {text!r}: the logged routes are {', '.join(ROUTES)}.")


def make_query(
    stage: str, since: str | None, model: str | None, route: str | None, limit: int
) -> Query:
    if limit < 1:
        raise UsageError(f"--limit {limit}: give a positive number of rows.")
    return Query(
        stage=stage,
        since_s=parse_since(since) if since else None,
        model=model or None,
        route=route_named(route) if route else None,
        limit=limit,
    )


def read_local(project_dir: Path, query: Query) -> tuple[list[str], list[dict[str, Any]]]:
    """The log's columns, and the rows of the local log matching `query`, newest first
    (lens.log.query: the same query the function runs for a stage in AWS)."""
    path = local_database(project_dir)
    if not path.is_file():
        raise ScarabError(
            f"There is no local prediction log at {path} yet: run 'scarab serve' (with"
            " [log] enabled, the default) and send it a request."
        )
    from scarab.models import use_function_code

    use_function_code(project_dir)
    try:
        import sqlalchemy as sa
        from lens.log import query as log_query
    except ImportError as exc:
        raise ScarabError(
            f"Reading the prediction log needs SQLAlchemy ({exc}): pip install -r"
            " lambda/requirements/log.txt"
        ) from None
    # Read-only: `scarab predictions` never creates or migrates the file serve owns.
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with engine.connect() as connection:
            return log_query.columns(), log_query.read_rows(connection, _filters(query))
    except sa.exc.DatabaseError as exc:  # OperationalError, "file is not a database"...
        raise ScarabError(f"The local prediction log {path} cannot be read: {exc.orig}") from None
    finally:
        engine.dispose()


def _filters(query: Query) -> Any:
    from lens.log.query import Filters

    return Filters(
        stage=query.stage, since_s=query.since_s, model=query.model, route=query.route,
        limit=query.limit,
    )  # fmt: skip


# The function that answers `scarab predictions` for a stage in AWS (every function
# with the log on can reach its database; this one is always deployed).
REMOTE_FUNCTION = "analyze"


def remote_event(query: Query) -> dict[str, Any]:
    """The direct event the function answers with the log's rows (lens.log.remote)."""
    event: dict[str, Any] = {"scarab": "predictions", "since": query.since_s, "limit": query.limit}
    if query.model:
        event["model"] = query.model
    if query.route:
        event["route"] = query.route
    return event


def parse_answer(function: str, payload: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and rows of the function's answer; ScarabError for its refusals."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        code, message = payload["error"].get("code"), payload["error"].get("message")
        advice = ""
        if code == "log_off":
            advice = " Store the URL and deploy: README, Prediction log."
        raise ScarabError(
            f"The function {function} did not read the log: {message} ({code}).{advice}"
        )
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("columns"), list)
        and isinstance(payload.get("rows"), list)
    ):
        raise ScarabError(
            f"The function {function} does not answer 'scarab predictions' (deployed before"
            " it could): run 'scarab deploy', then try again."
        )
    return [str(c) for c in payload["columns"]], list(payload["rows"])


def read_remote(aws: Aws, function: str, query: Query) -> tuple[list[str], list[dict[str, Any]]]:
    """The rows of the stage's log, read by its function `function` (lambda:Invoke)."""
    client = aws.client("lambda")
    missing = f"The stage has no function {function}: run 'scarab deploy' first."
    with aws_errors({"ResourceNotFoundException": missing}):
        got = call(
            client.invoke, FunctionName=function, InvocationType="RequestResponse",
            Payload=json.dumps(remote_event(query)).encode(),
        )  # fmt: skip
    body = got["Payload"].read()
    if got.get("FunctionError"):
        raise ScarabError(f"The function {function} failed reading the log: {body[:500]!r}")
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    return parse_answer(function, payload)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.datetime):  # a local read (lens is importable then)
        from lens.log.query import plain

        return plain(value)
    return value  # rows the function read are JSON already, in the same form


def as_json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps([{k: _plain(v) for k, v in row.items()} for row in rows], indent=2)


# A text cell starting with one of these is a formula to a spreadsheet; a logged model
# name is whatever a request's path said (/predict/=HYPERLINK(...) is logged as a 404).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    plain = _plain(value)
    if isinstance(plain, str) and plain.startswith(_FORMULA_STARTS):
        return "'" + plain  # OWASP's advice: a leading quote makes it text
    return plain


def as_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(row.get(k)) for k in columns})
    return buf.getvalue()


def as_text(rows: Sequence[dict[str, Any]]) -> str:
    """An aligned table of TEXT_COLUMNS, newest first."""
    if not rows:
        return "No predictions match."
    cells = [[_cell(r.get(c)) for c in TEXT_COLUMNS] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(TEXT_COLUMNS)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(TEXT_COLUMNS), *(line(c) for c in cells)])


def _cell(value: Any) -> str:
    return "" if value is None else str(_plain(value))
