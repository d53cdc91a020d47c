"""The web client's same-origin `/api/*` routes, as the Vercel proxy answers them.

`web-client/api/analyze.js` is what the page talks to in production; locally serve
plays that part: it forwards to the deployed stage through the gateway's rules with
the stage's API key added server-side, limits bodies to Vercel's 4,500,000 bytes,
passes status codes, Retry-After and bodies through, and never returns the key.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit

from scarab.serve.gateway import Gateway
from scarab.serve.proxy_event import IncomingRequest
from scarab.serve.responses import HttpResponse
from scarab.serve.snapshot import Snapshot

MAX_BODY_BYTES = 4_500_000  # Vercel's request body limit
PASSED_HEADERS = ("content-type", "retry-after", "x-amzn-requestid", "x-amzn-errortype")
# Idempotency-Key: a retried POST /api/jobs returns the same job (web-client/api/jobs.js
# forwards it too).
FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "user-agent", "idempotency-key")
_PREDICT = re.compile(r"^/api/predict/([^/]+)$")
_JOB = re.compile(r"^/api/jobs/([^/]+)$")
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_ROUTES: dict[str, tuple[str, str]] = {
    "/api/analyze": ("POST", "/analyze"),
    "/api/uploads": ("POST", "/uploads"),
    "/api/jobs": ("POST", "/jobs"),
    "/api/models": ("GET", "/models"),
    "/api/health": ("GET", "/health"),
    "/api/stats": ("GET", "/stats"),
}
# The query parameters a route passes on (everything else stays here): the dashboard's window.
FORWARDED_QUERY = {"/stats": ("since",)}


def forwarded_query(stage_path: str, raw_query: str) -> str:
    """The part of the page's query string `stage_path` takes (none for most routes)."""
    names = FORWARDED_QUERY.get(stage_path, ())
    pairs = [(k, v) for k, v in parse_qsl(raw_query, keep_blank_values=True) if k in names]
    return urlencode(pairs)


def target(path: str) -> tuple[str, str] | None:
    """(method, stage path) that `/api/...` forwards to, or None for an unknown route."""
    path = path.rstrip("/") or "/"
    if path in _ROUTES:
        return _ROUTES[path]
    predict = _PREDICT.match(path)
    if predict:
        return ("POST", f"/predict/{predict.group(1)}")
    job = _JOB.match(path)
    if job:
        return ("GET", f"/jobs/{job.group(1)}")
    return None


def _error(
    status: int, code: str, message: str, headers: Sequence[tuple[str, str]] = ()
) -> HttpResponse:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return HttpResponse(
        status,
        [("content-type", "application/json"), ("cache-control", "no-store"), *headers],
        body,
    )


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normal_origin(text: str) -> str | None:
    """`scheme://host[:port]` in lower case without a default port (how browsers send
    Origin), or None when `text` is not a URL with a host."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _allowed_origins() -> set[str]:
    raw = os.environ.get("ALLOWED_ORIGINS", "")
    return {o for o in (normal_origin(item) for item in raw.split(",")) if o}


def check_origin(
    origin: str | None, host: str | None, scheme: str = "http"
) -> tuple[bool, list[tuple[str, str]]]:
    """Same rule as the Vercel proxy: no Origin, or the same origin (scheme, host and
    port, default ports left out: serve speaks plain `scheme`), passes; else only
    ALLOWED_ORIGINS."""
    if not origin:
        return True, []
    normal = normal_origin(origin)
    if normal is None:
        return False, []
    if host and normal == normal_origin(f"{scheme}://{host}"):
        return True, []
    if normal in _allowed_origins():
        return True, [("access-control-allow-origin", origin), ("vary", "Origin")]
    return False, []


def passed_on(
    upstream: HttpResponse, key: str | None, cors: Sequence[tuple[str, str]]
) -> HttpResponse:
    """What the page gets for the stage's answer: its status, body and a few headers,
    the key redacted; a redirect is not passed on (the Vercel proxy does not follow
    one either, so as not to carry the key elsewhere): 502 upstream_unreachable."""
    if 300 <= upstream.status < 400:
        return _error(
            502,
            "upstream_unreachable",
            f"The analysis API answered with a redirect ({upstream.status}), "
            "which the proxy does not follow.",
            cors,
        )
    body = upstream.body
    if key and key.encode() in body:  # whatever the upstream says, the key stays here
        body = body.replace(key.encode(), b"[redacted]")
    out = [("cache-control", "no-store"), *cors]
    for name in PASSED_HEADERS:
        value = upstream.header(name)
        if value:
            out.append((name, value))
    return HttpResponse(upstream.status, out, body)


class WebProxy:
    """Answers `/api/...` by calling the gateway in-process with the local key."""

    def __init__(self, gateway: Gateway, snapshot: Callable[[], Snapshot | None]) -> None:
        self.gateway = gateway
        self.snapshot = snapshot

    async def handle(self, request: IncomingRequest, body_too_large: bool) -> HttpResponse:
        route = target(request.path)
        if route is None:
            return _error(404, "not_found", "There is no such route on this proxy.")
        ok, cors = check_origin(request.header("origin"), request.header("host"))
        if not ok:
            return _error(
                403, "origin_not_allowed", "This page's origin is not allowed to use this API."
            )
        verb, stage_path = route
        job = _JOB.match(request.path.rstrip("/"))
        if job and not _JOB_ID.match(job.group(1)):
            # As api/jobs/[id].js: a malformed id never leaves the proxy.
            return _error(404, "job_not_found", "There is no job with that id.", cors)
        if request.method == "OPTIONS":
            return HttpResponse(
                204,
                [
                    *cors,
                    ("access-control-allow-methods", f"{verb}, OPTIONS"),
                    ("access-control-allow-headers", "content-type, idempotency-key"),
                    ("access-control-max-age", "600"),
                ],
            )
        if request.method != verb:
            return _error(
                405,
                "method_not_allowed",
                f"Use {verb} on {request.path}.",
                [("allow", f"{verb}, OPTIONS")],
            )
        if body_too_large:
            return _error(
                413,
                "payload_too_large",
                f"The request is larger than {MAX_BODY_BYTES} bytes; send a smaller image.",
                cors,
            )
        snapshot = self.snapshot()
        key = snapshot.local_key.value if snapshot and snapshot.local_key else None
        headers = [(k, v) for k, v in request.headers if k in FORWARDED_REQUEST_HEADERS]
        if verb == "POST" and not any(k == "content-type" for k, _ in headers):
            headers.append(("content-type", "application/json"))
        if key:
            headers.append(("x-api-key", key))
        upstream = await self.gateway.handle(
            IncomingRequest(
                method=verb,
                path=stage_path,
                raw_query=forwarded_query(stage_path, request.raw_query),
                headers=headers,
                body=request.body,
                source_ip=request.source_ip,
                host=request.host,
                port=request.port,
            ),
            snapshot,
        )
        return passed_on(upstream, key, cors)
