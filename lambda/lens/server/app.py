"""The ASGI application: the Lambda handler's routes over HTTP, plus SageMaker's contract.

Every route of the API (GET /health, GET /models, POST /predict/{model_id}, GET
/forecast/{model_id}, POST /analyze, GET /stats, CORS preflights, and the 404/405 answers)
is the Lambda handler's own (lens.handler): a request becomes the API Gateway event the
function gets behind API Gateway (lens.server.events), the handler answers it, and its
proxy result goes back as the response. The server adds only what API Gateway and
SageMaker do around the function:
- the API-key check (lens.server.auth) before anything is read, and the body limit;
- GET /ping (200 once the endpoint's models are loaded) and POST /invocations (a
  prediction for the model lens.server.sagemaker picks, run as POST /predict/<name>);
- GET /openapi.json: the function's document, with /ping and /invocations added.

The handler runs on one thread: Powertools keeps the current event on its Router class
and the logger and metrics are per invocation, so the core answers one request at a
time, as one Lambda execution environment does. The models it loads stay loaded for
the life of the process (lens.predict.loader's store). One exception to the queue: a
plain GET /health (a health checker's) that arrives while the thread is busy gets the
handler's own answer to its last /health, so a slow /analyze never fails ECS's check.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from lens.cors import EchoCORSConfig, cors_headers
from lens.errors import ApiError
from lens.images import describe_bytes
from lens.observability import logger
from lens.routing import declared_routes
from lens.server import auth, sagemaker
from lens.server.events import (
    DEADLINE_S,
    HttpAnswer,
    HttpRequest,
    ServerContext,
    http_answer,
    rest_event,
)
from lens.settings import get_settings

SERVER_PATHS = ("/ping", "/invocations")
# A core thread that has finished no request for this long is wedged (a request may take
# DEADLINE_S): /health then waits its turn, and fails, instead of answering from before.
WEDGED_AFTER_S = DEADLINE_S + 30.0
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Core:
    """The Lambda handler (every route), called on its one thread."""

    def __init__(self) -> None:
        from lens.handler import function  # imports the routes; loads no model yet

        self.function = function
        self.rules = [rule for rule, _ in declared_routes(function.routers)]
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lens-core")
        self._in_flight = 0  # requests on (or queued for) the core's thread
        self._health: HttpAnswer | None = None  # the handler's last 200 to a plain /health
        # When the thread last finished a request (or took one on while idle): a thread
        # that has finished nothing for longer than a request may take is wedged, and
        # then /health queues (and fails) so that ECS replaces the task.
        self._progress = time.monotonic()

    async def answer(self, request: HttpRequest) -> HttpAnswer:
        plain_health = is_plain_health(request)
        busy_for = time.monotonic() - self._progress
        if (
            plain_health
            and self._in_flight
            and self._health is not None
            and busy_for <= WEDGED_AFTER_S
        ):
            # The thread is busy (a slow /analyze): a health check must not queue behind
            # it, or ECS's (4 s timeout) fails and replaces a healthy task. The answer is
            # the handler's own, from its last /health, with this request's id.
            return with_request_id(self._health, ServerContext().aws_request_id)
        context = ServerContext()
        event = rest_event(request, context.aws_request_id, self.rules)
        loop = asyncio.get_running_loop()
        # ServerContext has every attribute of LambdaContext the handler reads.
        handler: Any = self.function.lambda_handler
        if not self._in_flight:
            self._progress = time.monotonic()
        self._in_flight += 1
        try:
            result = await loop.run_in_executor(self._thread, handler, event, context)
        finally:
            self._in_flight -= 1
            self._progress = time.monotonic()
        answer = http_answer(result)
        if plain_health and answer.status == 200:
            self._health = answer
        return answer

    @cached_property
    def openapi(self) -> bytes:
        """The handler's OpenAPI document with the server's own routes added."""
        from lens.openapi import openapi_json

        document: dict[str, Any] = json.loads(openapi_json())
        document.setdefault("paths", {}).update(server_paths())
        return json.dumps(document).encode()

    def shutdown(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)


def _request_id() -> str:
    return str(uuid.uuid4())


HEALTH = HttpRequest("GET", "/health", "", [], b"", "127.0.0.1")


def is_plain_health(request: HttpRequest) -> bool:
    """GET /health with no query and no Origin: what a health checker (ECS's, Docker's)
    sends, and whose answer depends on no part of the request."""
    return (
        request.method == "GET"
        and request.path == "/health"
        and not request.raw_query
        and not any(name == "origin" for name, _ in request.headers)
    )


def with_request_id(answer: HttpAnswer, request_id: str) -> HttpAnswer:
    headers = [
        (name, request_id if name.lower() == "x-request-id" else value)
        for name, value in answer.headers
    ]
    return HttpAnswer(answer.status, headers, answer.body)


def server_paths() -> dict[str, Any]:
    """The OpenAPI entries of GET /ping and POST /invocations."""
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    errors = {
        str(status): {
            "description": "An error (see error.code)",
            "content": {"application/json": {"schema": error}},
        }
        for status in (400, 404, 413, 503)
    }
    return {
        "/ping": {
            "get": {
                "summary": "SageMaker's health check: 200 once the endpoint's models are loaded",
                "tags": ["sagemaker"],
                "security": [],
                "responses": {
                    "200": {"description": "Ready"},
                    "503": errors["503"],
                },
            }
        },
        "/invocations": {
            "post": {
                "summary": "SageMaker's prediction route: POST /predict/<model> for the "
                "model named by the custom attributes header or the body's model field "
                "(default: the endpoint's only model)",
                "tags": ["sagemaker"],
                "parameters": [
                    {
                        "name": "X-Amzn-SageMaker-Custom-Attributes",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "example": "model=tabular"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": {
                        "description": "The model's answer, as POST /predict/{model_id} gives it"
                    },
                    **errors,
                },
            }
        },
    }


def _to_response(answer: HttpAnswer) -> Response:
    response = Response(content=answer.body, status_code=answer.status)
    del response.headers["content-length"]
    for name, value in answer.headers:
        response.headers.append(name, value)
    response.headers["content-length"] = str(len(answer.body))
    return response


def error_answer(error: ApiError, request_id: str, origin: str | None) -> Response:
    """An error the server answers itself, with the project's body and the function's
    CORS and request-id headers."""
    headers = {
        "Content-Type": "application/json",
        "X-Request-Id": request_id,
        **(_cors(origin) if origin else {}),
        **error.headers,
    }
    body = json.dumps(error.body(request_id)).encode()
    return _to_response(HttpAnswer(error.status, list(headers.items()), body))


def _cors(origin: str | None) -> dict[str, str]:
    return cors_headers(EchoCORSConfig(get_settings().allowed_origins), origin or None)


def forbidden(origin: str | None) -> Response:
    """API Gateway's answer to a missing or unknown key (CORS added, as the deployed
    API's gateway responses add it)."""
    headers = {**auth.FORBIDDEN_HEADERS, **_cors(origin)}
    return _to_response(HttpAnswer(403, list(headers.items()), auth.FORBIDDEN_BODY))


async def read_body(request: Request, limit: int) -> bytes | int:
    """The body, or its size when it is over `limit`: the declared size, or (a chunked
    body) what had arrived when it passed the limit. Reading stops there, so a body
    streamed without end still gets its 413."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return int(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return size
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(size: int, limit: int) -> ApiError:
    """The function's own 413 for an oversized body (lens.function: the same words)."""
    return ApiError(
        413,
        "body_too_large",
        f"The request body is {describe_bytes(size)}; the limit is {describe_bytes(limit)}.",
    )


def create_app() -> FastAPI:
    """The server's ASGI app. The core (and the endpoint's models) load at startup."""
    state: dict[str, Core] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        core = await run_in_threadpool(Core)
        await run_in_threadpool(warm)
        await core.answer(HEALTH)  # the handler's /health, for checks while it is busy
        state["core"] = core
        try:
            yield
        finally:
            core.shutdown()

    # FastAPI's own document and docs pages are off: /openapi.json is the function's.
    app = FastAPI(
        title="Scarab", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan
    )

    def incoming(
        request: Request, body: bytes, path: str | None = None, query: str | None = None
    ) -> HttpRequest:
        client = request.client
        return HttpRequest(
            method=request.method,
            path=path or request.url.path,
            raw_query=request.url.query if query is None else query,
            headers=[
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers.raw
            ],
            body=body,
            source_ip=client.host if client else "127.0.0.1",
        )

    @app.middleware("http")
    async def require_key(request: Request, call_next: Any) -> Response:
        if auth.secret_name() is None or not auth.needs_key(request.method, request.url.path):
            response: Response = await call_next(request)
            return response
        origin = request.headers.get("origin")
        verdict = await run_in_threadpool(
            auth.check, request.method, request.url.path, request.headers.get(auth.KEY_HEADER)
        )
        if verdict.error is not None:
            return error_answer(verdict.error, _request_id(), origin)
        if not verdict.allowed:
            return forbidden(origin)
        allowed: Response = await call_next(request)
        return allowed

    @app.get("/ping", include_in_schema=False)
    async def ping() -> Response:
        missing = await run_in_threadpool(unloaded)
        if missing:
            error = ApiError(503, "model_unavailable", f"Not loaded yet: {', '.join(missing)}.")
            return error_answer(error, _request_id(), None)
        return Response(content=b'{"status":"ok"}', media_type="application/json")

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> Response:
        core = state["core"]
        return Response(content=core.openapi, media_type="application/json")

    @app.post("/invocations", include_in_schema=False)
    async def invocations(request: Request) -> Response:
        core = state["core"]
        limit = get_settings().max_body_bytes
        body = await read_body(request, limit)
        origin = request.headers.get("origin")
        request_id = _request_id()
        if isinstance(body, int):
            return error_answer(too_large(body, limit), request_id, origin)
        try:
            names = await run_in_threadpool(registered_models)
            chosen = sagemaker.choose(
                request.headers.get(sagemaker.ATTRIBUTES_HEADER),
                body,
                sagemaker.endpoint_models(),
                names,
            )
            if not _MODEL_NAME.match(chosen.model):
                raise ApiError(404, "unknown_model", f"There is no model '{chosen.model[:64]}'.")
        except ApiError as error:
            return error_answer(error, request_id, origin)
        query = None if chosen.version is None else urlencode({"version": chosen.version})
        forwarded = incoming(request, chosen.body, f"/predict/{chosen.model}", query)
        return _to_response(await core.answer(forwarded))

    @app.api_route(
        "/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
        include_in_schema=False,
    )
    async def through_the_handler(request: Request, path: str) -> Response:
        core = state["core"]
        limit = get_settings().max_body_bytes
        body = await read_body(request, limit)
        if isinstance(body, int):
            request_id = _request_id()
            return error_answer(too_large(body, limit), request_id, request.headers.get("origin"))
        return _to_response(await core.answer(incoming(request, body)))

    return app


def registered_models() -> list[str]:
    """The registry's model names as the function sees them (503 when unreadable)."""
    from lens.predict.routes import current_registry

    return current_registry().names()


def served_models() -> list[str]:
    """The endpoint's models: SCARAB_ENDPOINT_MODELS, else every registered one."""
    return sagemaker.endpoint_models() or registered_models()


def unloaded() -> list[str]:
    """The endpoint's models not loaded yet (loading each now); [] when all are ready."""
    from lens.predict.loader import ModelLoadError, store
    from lens.predict.routes import resolve

    missing = []
    try:
        names = served_models()
    except ApiError:
        return ["the model registry"]
    for name in names:
        try:
            store().get(resolve(name))
        except (ApiError, ModelLoadError) as exc:
            logger.warning("model not ready", extra={"model": name, "why": str(exc)})
            missing.append(name)
    return missing


def warm() -> None:
    """Load the endpoint's models before the first request (failures answer per request)."""
    missing = unloaded()
    if missing:
        logger.warning("models not loaded at startup", extra={"models": missing})
    else:
        logger.info("models loaded", extra={"models": served_models()})
