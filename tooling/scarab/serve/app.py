"""The ASGI application uvicorn runs: `/{stage}/...` the API, `/_url/<function>/...`
the functions' Function URLs, `/api/...` the web client's proxy, everything else the web
client's static files."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from scarab.serve.endpoints import PAYLOAD_LIMIT, EndpointEmulator
from scarab.serve.endpoints import PREFIX as SAGEMAKER_PREFIX
from scarab.serve.function_url import URL_PREFIX, FunctionUrlGateway
from scarab.serve.gateway import BODY_LIMIT, EVENT_LIMIT, Gateway
from scarab.serve.guard import MISDIRECTED_MESSAGE, MISDIRECTED_STATUS, host_allowed, host_names
from scarab.serve.lambda_invoke import PREFIX as LAMBDA_PREFIX
from scarab.serve.lambda_invoke import LambdaInvoker
from scarab.serve.proxy_event import IncomingRequest
from scarab.serve.responses import HttpResponse
from scarab.serve.s3_proxy import PREFIX as S3_PREFIX
from scarab.serve.s3_proxy import S3Proxy
from scarab.serve.snapshot import Snapshot
from scarab.serve.webproxy import MAX_BODY_BYTES, WebProxy

log = logging.getLogger("scarab.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Past the limit the rest of an upload is read and dropped (so the client reads our
# 413 instead of a reset connection), up to this much; beyond it the connection closes.
_DRAIN_LIMIT = 64 * 1024 * 1024
# A Function URL takes what Lambda's synchronous invocation does.
FUNCTION_URL_BODY_LIMIT = EVENT_LIMIT

NOT_BUILT_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Scarab</title></head>
<body><h1>Scarab</h1><p>The web client is not built yet (no web-client/public/ in this
project). The API is served under its stage path; see the terminal for its URL and key.</p>
</body></html>
"""


class ClientGone(Exception):
    """The client disconnected (or was disconnected for stalling) before its body ended."""


async def read_body(receive: Receive, limit: int, declared: int | None) -> tuple[bytes, bool]:
    """The request body, or (b"", True) when it is larger than `limit` bytes.

    Raises ClientGone when the connection ends first: nobody is left to answer.
    """
    too_large = declared is not None and declared > limit
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            too_large = True
        if too_large:
            chunks.clear()
            if size > _DRAIN_LIMIT:
                return b"", True
        else:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return (b"", True) if too_large else (b"".join(chunks), False)


async def send_response(
    send: Send, response: HttpResponse, head_only: bool = False, declared_length: bool = False
) -> None:
    headers = [
        (k.lower().encode("latin-1", "replace"), v.encode("latin-1", "replace"))
        for k, v in response.headers
        if k.lower() not in ("content-length", "transfer-encoding", "connection")
    ]
    # `declared_length`: a HEAD's answer says how long the GET's body is (S3's HeadObject).
    declared = response.header("content-length") if head_only and declared_length else None
    length = declared if declared is not None else str(len(response.body))
    headers.append((b"content-length", length.encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head_only else response.body})


class ServeApp:
    """Dispatches by path prefix; holds no per-request state."""

    def __init__(
        self,
        gateway: Gateway,
        snapshot: Callable[[], Snapshot | None],
        stage: str,
        web_root: Path,
        lifespan: Callable[[], Awaitable[None]] | None = None,
        shutdown: Callable[[], Awaitable[None]] | None = None,
        hosts: frozenset[str] | None = None,
        endpoints: EndpointEmulator | None = None,
        s3: S3Proxy | None = None,
        invoker: LambdaInvoker | None = None,
    ) -> None:
        """`endpoints`: sagemaker-runtime for the functions serve runs (at /_sagemaker);
        `s3`: the emulator's S3 with POST policies enforced (at /_s3); `invoker`: Lambda's
        Invoke for the functions serve runs (at /_lambda)."""
        self.gateway = gateway
        self.endpoints = endpoints
        self.s3 = s3
        self.invoker = invoker
        self.snapshot = snapshot
        self.stage = stage
        self.proxy = WebProxy(gateway, snapshot)
        self.urls = FunctionUrlGateway(gateway.runtime, metrics=gateway.metrics, rng=gateway.rng)
        self.web_root = web_root
        self._static = StaticFiles(directory=web_root, html=True, check_dir=False)
        self._startup = lifespan
        self._shutdown = shutdown
        self.hosts = hosts if hosts is not None else host_names()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if not self._host_allowed(scope):
            page = HttpResponse(
                MISDIRECTED_STATUS,
                [("content-type", "text/plain; charset=utf-8")],
                MISDIRECTED_MESSAGE,
            )
            await send_response(send, page, head_only=scope["method"] == "HEAD")
            return
        try:
            await self._dispatch(scope, receive, send)
        except ClientGone:
            return

    def _host_allowed(self, scope: Scope) -> bool:
        """Only loopback's names (DNS rebinding: a foreign page's name pointing here)."""
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        server = scope.get("server") or (None, None)
        return host_allowed(host, self.hosts, server[1])

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        prefix = f"/{self.stage}"
        if path.startswith(URL_PREFIX):
            await self._function_url(scope, receive, send, path)
        elif self.endpoints is not None and path.startswith(SAGEMAKER_PREFIX + "/"):
            await self._sagemaker(scope, receive, send, path[len(SAGEMAKER_PREFIX) :])
        elif self.s3 is not None and (path == S3_PREFIX or path.startswith(S3_PREFIX + "/")):
            await self._s3(scope, receive, send)
        elif self.invoker is not None and path.startswith(LAMBDA_PREFIX + "/"):
            await self._lambda(scope, receive, send, path[len(LAMBDA_PREFIX) :])
        elif path == prefix or path.startswith(prefix + "/"):
            await self._api(scope, receive, send, path[len(prefix) :] or "/")
        elif path == "/api" or path.startswith("/api/"):
            await self._proxy(scope, receive, send)
        else:
            await self._web(scope, receive, send)

    async def _request(
        self, scope: Scope, receive: Receive, path: str, limit: int
    ) -> tuple[IncomingRequest, bool]:
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        declared = None
        for key, value in headers:
            if key == "content-length" and value.isdigit():
                declared = int(value)
        body, too_large = await read_body(receive, limit, declared)
        client = scope.get("client") or ("127.0.0.1", 0)
        server = scope.get("server") or ("127.0.0.1", 0)
        host = next((v for k, v in headers if k == "host"), f"{server[0]}:{server[1]}")
        request = IncomingRequest(
            method=scope["method"],
            path=path,
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            source_ip=str(client[0]),
            host=host,
            port=int(server[1] or 0),
        )
        return request, too_large

    async def _api(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        request, too_large = await self._request(scope, receive, path, BODY_LIMIT)
        response = await self.gateway.handle(request, self.snapshot(), body_too_large=too_large)
        await send_response(send, response, head_only=scope["method"] == "HEAD")

    async def _function_url(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        rest = path[len(URL_PREFIX) :]
        own = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        request, too_large = await self._request(scope, receive, own, FUNCTION_URL_BODY_LIMIT)
        if too_large:
            response = HttpResponse(
                413, [("Content-Type", "application/json")], b'{"Message":"Request Too Long"}'
            )
        else:
            # What the client signed: the path as it was sent, not as decoded.
            raw = scope.get("raw_path") or path.encode()
            snapshot = self.snapshot()
            response = await self.urls.handle(
                request,
                raw.decode("latin-1"),
                snapshot.urls if snapshot else {},
                snapshot.region if snapshot else "",
                snapshot.account_id if snapshot else "",
            )
        await send_response(send, response, head_only=scope["method"] == "HEAD")

    async def _sagemaker(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        assert self.endpoints is not None
        request, too_large = await self._request(scope, receive, path, PAYLOAD_LIMIT)
        headers = {k.lower(): v for k, v in request.headers}
        response = await self.endpoints.handle(
            request.method, path, headers, request.body, too_large
        )
        await send_response(send, response)

    async def _s3(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.s3 is not None
        # What the client signed and named: the path as sent, still percent-encoded.
        raw = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        head = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        limit = self.s3.body_limit(
            scope["method"],
            raw[len(S3_PREFIX) :],
            scope.get("query_string", b"").decode("latin-1"),
            head,
        )
        request, too_large = await self._request(scope, receive, scope["path"], limit)
        scheme = scope.get("scheme") or "http"
        response = await self.s3.handle(
            request.method,
            raw[len(S3_PREFIX) :],
            request.raw_query,
            request.headers,
            request.body,
            too_large,
            f"{scheme}://{request.host}{S3_PREFIX}",
        )
        head = scope["method"] == "HEAD"
        await send_response(send, response, head_only=head, declared_length=head)

    async def _lambda(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        assert self.invoker is not None
        request, too_large = await self._request(scope, receive, path, FUNCTION_URL_BODY_LIMIT)
        # What the client signed: the path as sent, /_lambda and its percent-encoding kept.
        raw = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        refusal = None
        if not too_large:
            refusal = await asyncio.to_thread(
                self.invoker.authorize,
                request.method,
                raw,
                request.raw_query,
                request.headers,
                request.body,
            )
        if refusal is not None:
            await send_response(send, refusal)
            return
        headers = {k.lower(): v for k, v in request.headers}
        response = await self.invoker.handle(
            request.method, path, request.raw_query, headers, request.body, too_large
        )
        await send_response(send, response)

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        request, too_large = await self._request(scope, receive, scope["path"], MAX_BODY_BYTES)
        response = await self.proxy.handle(request, too_large)
        await send_response(send, response)

    async def _web(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.web_root.is_dir():
            try:
                await self._static(scope, receive, send)
            except HTTPException as exc:  # StaticFiles signals 404/405 by raising
                text = HTTPStatus(exc.status_code).phrase.encode()
                page = HttpResponse(exc.status_code, [("content-type", "text/plain")], text)
                await send_response(send, page, head_only=scope["method"] == "HEAD")
            return
        if scope["path"] in ("/", "/index.html"):
            page = HttpResponse(200, [("content-type", "text/html; charset=utf-8")], NOT_BUILT_PAGE)
        else:
            page = HttpResponse(404, [("content-type", "text/plain; charset=utf-8")], b"Not Found")
        await send_response(send, page, head_only=scope["method"] == "HEAD")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._startup is not None:
                        await self._startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    if self._shutdown is not None:
                        await self._shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return
