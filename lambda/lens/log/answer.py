"""The prediction log's row for one answer: what the handler knows (the request, the
answer, how long it took) plus what the route noted on the invocation (model, version,
input digest, tokens). Pure: no database, no SQLAlchemy."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from lens.log import LOGGED_RULES, now
from lens.routing import api_path, rule_matches

_NOTED = ("model", "model_version", "input_digest", "input", "tokens_in", "tokens_out", "cache")
_CACHE_STATES = ("hit", "miss", "bypass")


def request_line(event: Mapping[str, Any]) -> tuple[str, str]:
    """(METHOD, path) of a normalized event (REST, HTTP API or Function URL)."""
    method = event.get("httpMethod")
    path = event.get("path")
    if isinstance(method, str) and isinstance(path, str):
        return method.upper(), path
    http = (event.get("requestContext") or {}).get("http") or {}
    method, path = http.get("method"), event.get("rawPath") or http.get("path")
    return (str(method or "").upper(), str(path or ""))


def logged_rule(rules: Iterable[tuple[str, str]], method: str, path: str) -> str | None:
    """The logged route rule (of these declared (rule, METHOD)s) a request went to."""
    for rule, declared_method in rules:
        if rule in LOGGED_RULES and declared_method == method and rule_matches(rule, path):
            return rule
    return None


def path_model(event: Mapping[str, Any]) -> str | None:
    """The last path segment (the model of /predict/<model_id>), or None."""
    last = request_line(event)[1].rstrip("/").rsplit("/", 1)[-1]
    return last or None


def _header(answer: Mapping[str, Any], name: str) -> str | None:
    for key, value in (answer.get("headers") or {}).items():
        if key.lower() == name and isinstance(value, str):
            return value
    for key, values in (answer.get("multiValueHeaders") or {}).items():
        if key.lower() == name and isinstance(values, list) and values:
            return str(values[0])
    return None


def _stage(event: Mapping[str, Any], configured: str | None) -> str:
    if configured:
        return configured
    stage = (event.get("requestContext") or {}).get("stage")
    return stage if isinstance(stage, str) and stage else "unknown"


def _clip(value: Any, size: int) -> str | None:
    return None if value is None else str(value)[:size]


def row_for(
    *,
    rule: str,
    event: Mapping[str, Any],
    answer: Mapping[str, Any],
    request_id: str,
    latency_ms: float,
    notes: Mapping[str, Any],
    stage: str | None,
    store_inputs: bool = False,
) -> dict[str, Any]:
    """The predictions row for `answer` to the request `event` routed to `rule`; the
    input the route noted only with `store_inputs` (else its digest alone)."""
    status = int(answer.get("statusCode") or 0)
    body = answer.get("body")
    text = body if isinstance(body, str) and not answer.get("isBase64Encoded") else None
    error_code = None
    output = None
    if status >= 400:
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        error = parsed.get("error") if isinstance(parsed, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        error_code = str(code)[:64] if code else f"http_{status}"
    else:
        output = text
    facts = {k: notes.get(k) for k in _NOTED}
    if facts["model"] is None:
        # A request that failed before the route named the model (unknown model, bad
        # body): the model the path asked for.
        params = event.get("pathParameters") or {}
        facts["model"] = params.get("model_id") or (
            path_model(event) if "<model_id>" in rule else None
        )
    stored = facts["input"] if store_inputs else None
    if stored is not None and not isinstance(stored, str):
        stored = json.dumps(stored, sort_keys=True, separators=(",", ":"), default=str)
    cache = (_header(answer, "x-cache") or "").strip().lower() or facts["cache"]
    return {
        "at": now(),
        "stage": _stage(event, stage)[:64],
        "request_id": request_id[:64],
        "route": api_path(rule),
        "model": _clip(facts["model"], 128),
        "model_version": _clip(facts["model_version"], 64),
        "input_digest": _clip(facts["input_digest"], 64),
        "input": stored,
        "output": output,
        "latency_ms": round(latency_ms, 3),
        "status": status,
        "error_code": error_code,
        "tokens_in": facts["tokens_in"],
        "tokens_out": facts["tokens_out"],
        "cache": cache if cache in _CACHE_STATES else None,
    }
