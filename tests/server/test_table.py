"""One request table through both adapters: the Lambda handler (in this process, with the
API Gateway event tests/function builds) and the server (a real uvicorn process, over HTTP).

Each row is a request and what it must answer: status, error code, body fields, headers.
Both adapters must give that answer, and the same answer (status, body without its
request id and timings, CORS and Allow headers), except where a row says how and why
they legitimately differ:
- keys: API Gateway checks them before the Lambda function runs (tests/serve covers that
  path), so the handler answers; the server checks them itself (403 as API Gateway's);
- SageMaker's /ping and /invocations exist on the server only: the handler answers its
  404 for them, and an /invocations row names the /predict request it stands for, which
  must answer the same through the handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from lens.predict.registry import registry

from tests.function.events import jpeg, response_headers, rest_event
from tests.server.conftest import KEY, MAX_BODY
from tests.server.support import ServerProcess, request

ORIGIN = "https://app.example"
FEATURES = json.dumps({"features": dict.fromkeys(registry().get("tabular").features, 1.0)})
PHOTO = jpeg((64, 48))
ANALYZE = json.dumps({"image": __import__("base64").b64encode(PHOTO).decode(), "speed": "fast"})
# Headers both adapters must agree on when a row's answers are the same.
COMPARED_HEADERS = (
    "content-type",
    "allow",
    "vary",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
)
# Fields that differ by nature: per request, or (offline_models, GET /health) per process:
# the server loads its endpoint's models at startup, this process only those it ran.
VOLATILE = ("request_id", "timings_ms", "offline_models")


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    body: bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    key: Literal["valid", "missing", "wrong"] = "valid"


@dataclass(frozen=True)
class Expect:
    status: int
    code: str | None = None  # the project's error body's error.code
    body: dict[str, Any] | None = None  # fields (and values) the JSON body must have
    headers: dict[str, str] = field(default_factory=dict)  # lower-case name -> exact value


@dataclass(frozen=True)
class Row:
    id: str
    request: Req
    expect: Expect
    # How the Lambda path differs, when it must: its request (None: the same) and answer
    # (None: the same); `same` False when the two answers are not compared with each other.
    lambda_request: Req | None = None
    lambda_expect: Expect | None = None
    same: bool = True
    why: str = ""


GATEWAY_KEY = "API Gateway checks the key before the function runs"
SERVER_ONLY = "SageMaker's contract is the server's: the function has no such route"
JSON = {"Content-Type": "application/json"}
FORBIDDEN = Expect(403, body={"message": "Forbidden"}, headers={"content-type": "application/json"})
PREDICT = Req("POST", "/predict/tabular", FEATURES, JSON)
TABULAR_ANSWER = {"model_version": "1.0.0", "threshold": 0.5}

ROWS = (
    Row("health", Req("GET", "/health", key="missing"), Expect(200, body={"status": "ok"})),
    Row(
        "health-cors",
        Req("GET", "/health", headers={"Origin": ORIGIN}, key="missing"),
        Expect(200, headers={"access-control-allow-origin": ORIGIN, "vary": "Origin"}),
    ),
    Row("models", Req("GET", "/models"), Expect(200)),
    Row("predict-tabular", PREDICT, Expect(200, body=TABULAR_ANSWER)),
    Row(
        "predict-malformed-json",
        Req("POST", "/predict/tabular", "{not json", JSON),
        Expect(400, "malformed_json"),
    ),
    Row(
        "predict-invalid-field",
        Req("POST", "/predict/tabular", json.dumps({"features": {"mean_radius": "x"}}), JSON),
        Expect(422, "invalid_field"),
    ),
    Row(
        "predict-unknown-model",
        Req("POST", "/predict/nope", FEATURES, JSON),
        Expect(404, "unknown_model"),
    ),
    Row("forecast", Req("GET", "/forecast/bikes-3h"), Expect(200, body={"model": "bikes-3h"})),
    Row("forecast-not-a-forecaster", Req("GET", "/forecast/tabular"), Expect(404, "unknown_model")),
    Row(
        "analyze",
        Req("POST", "/analyze", ANALYZE, JSON),
        Expect(200, body={"model": "gemini-3.5-flash"}),
    ),
    Row(
        "analyze-raw-jpeg",
        Req("POST", "/analyze", PHOTO, {"Content-Type": "image/jpeg"}),
        Expect(200, body={"image": {"width": 64, "height": 48}}),
    ),
    # No bucket or table here (a container target runs no jobs): both answer 503 alike.
    Row(
        "uploads-unavailable",
        Req("POST", "/uploads", json.dumps({"content_type": "image/jpeg", "bytes": 1000}), JSON),
        Expect(503, "uploads_unavailable"),
    ),
    Row("jobs-unavailable", Req("POST", "/jobs", ANALYZE, JSON), Expect(503, "jobs_unavailable")),
    Row("job-unavailable", Req("GET", "/jobs/" + "0" * 32), Expect(503, "jobs_unavailable")),
    Row(
        "analyze-bad-image",
        Req("POST", "/analyze", json.dumps({"image": "!!!"}), JSON),
        Expect(400, "invalid_image_encoding"),
    ),
    Row(
        "body-too-large",
        Req("POST", "/predict/tabular", "x" * (MAX_BODY + 1), {**JSON, "Origin": ORIGIN}),
        Expect(413, "body_too_large", headers={"access-control-allow-origin": ORIGIN}),
    ),
    Row(
        "wrong-content-type",
        Req("POST", "/analyze", "<image/>", {"Content-Type": "application/xml"}),
        Expect(400, "malformed_json"),
    ),
    Row(
        "method-not-allowed",
        Req("DELETE", "/models"),
        Expect(405, "method_not_allowed", headers={"allow": "GET, OPTIONS"}),
    ),
    Row("unknown-path", Req("GET", "/nowhere"), Expect(404, "not_found")),
    Row(
        "preflight",
        Req(
            "OPTIONS",
            "/predict/tabular",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
            key="missing",  # browsers send no key with a preflight
        ),
        Expect(
            204,
            headers={
                "access-control-allow-origin": ORIGIN,
                "access-control-allow-methods": "GET,OPTIONS,POST",
            },
        ),
    ),
    Row(
        "missing-key",
        Req("GET", "/models", key="missing"),
        FORBIDDEN,
        lambda_expect=Expect(200),
        same=False,
        why=GATEWAY_KEY,
    ),
    Row(
        "wrong-key",
        Req("POST", "/predict/tabular", FEATURES, JSON, key="wrong"),
        FORBIDDEN,
        lambda_expect=Expect(200, body=TABULAR_ANSWER),
        same=False,
        why=GATEWAY_KEY,
    ),
    Row(
        "ping",
        Req("GET", "/ping", key="missing"),
        Expect(200, body={"status": "ok"}),
        lambda_expect=Expect(404, "not_found"),
        same=False,
        why=SERVER_ONLY,
    ),
    Row(
        "invocations-header",
        Req(
            "POST",
            "/invocations",
            FEATURES,
            {**JSON, "X-Amzn-SageMaker-Custom-Attributes": "trace=1, model=tabular"},
        ),
        Expect(200, body=TABULAR_ANSWER),
        lambda_request=PREDICT,
        why=SERVER_ONLY,
    ),
    Row(
        "invocations-body-field",
        Req("POST", "/invocations", json.dumps({"model": "tabular", **json.loads(FEATURES)}), JSON),
        Expect(200, body=TABULAR_ANSWER),
        lambda_request=PREDICT,
        why=SERVER_ONLY,
    ),
    Row(
        "invocations-default-model",
        Req("POST", "/invocations", FEATURES, JSON),
        Expect(200, body=TABULAR_ANSWER),
        lambda_request=PREDICT,
        why="SCARAB_ENDPOINT_MODELS=tabular: " + SERVER_ONLY,
    ),
    Row(
        "invocations-unknown-model",
        Req(
            "POST",
            "/invocations",
            FEATURES,
            {**JSON, "X-Amzn-SageMaker-Custom-Attributes": "model=digits"},
        ),
        Expect(404, "unknown_model"),
        lambda_request=Req("POST", "/invocations", FEATURES, JSON),
        lambda_expect=Expect(404, "not_found"),
        same=False,
        why="digits is registered but not this endpoint's; " + SERVER_ONLY,
    ),
)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


def _headers(req: Req) -> dict[str, str]:
    headers = dict(req.headers)
    if req.key == "valid":
        headers["x-api-key"] = KEY
    elif req.key == "wrong":
        headers["x-api-key"] = "not-a-key-of-the-ring-0000"
    return headers


def through_lambda(handler: Callable[[dict[str, Any]], dict[str, Any]], req: Req) -> Answer:
    body = req.body.encode() if isinstance(req.body, str) else req.body
    binary = isinstance(body, bytes) and req.headers.get("Content-Type", "").startswith("image/")
    event = rest_event(
        req.method, req.path, body if binary else (body.decode() if body else None), _headers(req)
    )
    result = handler(event)
    payload = result.get("body") or ""
    return Answer(result["statusCode"], response_headers(result), payload.encode())


def through_server(server: ServerProcess, req: Req) -> Answer:
    body = req.body.encode() if isinstance(req.body, str) else req.body
    status, headers, data = request(
        server.url, req.method, req.path, headers=_headers(req), body=body
    )
    return Answer(status, headers, data)


def check(answer: Answer, expect: Expect, where: str) -> None:
    assert answer.status == expect.status, f"{where}: {answer.status} {answer.body[:300]!r}"
    for name, value in expect.headers.items():
        assert answer.headers.get(name) == value, f"{where}: {name}: {answer.headers.get(name)!r}"
    if answer.status == 204:
        return
    body = json.loads(answer.body)
    if expect.code is not None:
        assert set(body) == {"error", "request_id"}, where
        assert body["error"]["code"] == expect.code, f"{where}: {body}"
        assert body["error"]["message"], where
        assert body["request_id"] == answer.headers.get("x-request-id"), where
    for name, value in (expect.body or {}).items():
        got = body.get(name)
        if isinstance(value, dict):
            assert isinstance(got, dict) and value.items() <= got.items(), f"{where}: {name}={got}"
        else:
            assert got == value, f"{where}: {name}={got!r}"


def comparable(answer: Answer) -> tuple[int, dict[str, str], Any]:
    body = json.loads(answer.body) if answer.body else None
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in VOLATILE}
    headers = {k: answer.headers[k] for k in COMPARED_HEADERS if k in answer.headers}
    return answer.status, headers, body


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_request_table_through_both_adapters(
    row: Row, handler: Callable[[dict[str, Any]], dict[str, Any]], server: ServerProcess
) -> None:
    on_lambda = through_lambda(handler, row.lambda_request or row.request)
    on_server = through_server(server, row.request)
    check(on_lambda, row.lambda_expect or row.expect, f"lambda {row.id}")
    check(on_server, row.expect, f"server {row.id}")
    if row.same:
        assert comparable(on_server) == comparable(on_lambda), row.id


def test_the_table_covers_every_route_of_the_handler() -> None:
    from lens.handler import function

    covered = {(r.request.method, r.request.path) for r in ROWS}
    for path, method in function.routes():
        if path in {"/stats", "/openapi.json"}:
            continue  # /stats needs the prediction log; the document: test_openapi below
        prefix = path.split("{", 1)[0]
        assert any(m == method and p.startswith(prefix) for m, p in covered), (method, path)
