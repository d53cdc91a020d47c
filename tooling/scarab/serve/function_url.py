"""Lambda Function URLs served locally: `/_url/<function-name>/...` answers the way the
function's URL (`[functions.<name>.url]`) would on AWS.

Order of the rules, as Lambda applies them: a CORS preflight is answered from the URL's
CORS configuration (the function is not called); auth AWS_IAM needs a valid SigV4
signature (service "lambda", this region, the emulator's credentials), else 403
`{"Message": "Forbidden"}`; then the function gets a payload format 2.0 event and its
answer (2.0 response format) goes back with the URL's CORS headers added.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from scarab.emulator import FAKE_CREDENTIALS
from scarab.serve.gateway import VERSION_HEADER
from scarab.serve.metrics import Invocation, MetricStore
from scarab.serve.proxy_event import IncomingRequest
from scarab.serve.responses import HttpResponse
from scarab.serve.runtime import FunctionRuntime, InvokeError, InvokeTimeout
from scarab.serve.snapshot import FunctionUrl

log = logging.getLogger("scarab.serve")

# The path prefix of the Function URLs: /_url/<function-name>/<the URL's own path>.
URL_PREFIX = "/_url/"
# How far a signature's X-Amz-Date may be from now (SigV4's limit on AWS).
SIGNATURE_SKEW_S = 15 * 60
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<sig>[0-9a-f]{64})$"
)
# Bodies Lambda hands over as text; anything else arrives base64-encoded.
_TEXT_TYPES = re.compile(
    r"^(text/|application/(json|xml|javascript|x-www-form-urlencoded)|[^;]*\+(json|xml))",
    re.IGNORECASE,
)
_RESULT_KEYS = {"statusCode", "headers", "body", "isBase64Encoded", "cookies", "multiValueHeaders"}


def _json(status: int, message: str) -> HttpResponse:
    body = json.dumps({"Message": message}).encode()
    return HttpResponse(status, [("Content-Type", "application/json")], body)


def forbidden() -> HttpResponse:
    return _json(403, "Forbidden")


def _allowed_origin(cors: Mapping[str, Any], origin: str | None) -> str | None:
    """The Access-Control-Allow-Origin value for `origin`, or None when it is not allowed."""
    origins = [str(o) for o in cors.get("AllowOrigins") or []]
    if origin is None or not origins:
        return None
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


def cors_headers(cors: Mapping[str, Any], origin: str | None) -> list[tuple[str, str]]:
    """The CORS headers the URL adds to an answer for `origin` (none if not allowed)."""
    allowed = _allowed_origin(cors, origin)
    if allowed is None:
        return []
    out = [("Access-Control-Allow-Origin", allowed)]
    if cors.get("AllowCredentials"):
        out.append(("Access-Control-Allow-Credentials", "true"))
    if cors.get("ExposeHeaders"):
        out.append(("Access-Control-Expose-Headers", ",".join(cors["ExposeHeaders"])))
    if allowed != "*":
        out.append(("Vary", "Origin"))
    return out


def preflight(cors: Mapping[str, Any], request: IncomingRequest) -> HttpResponse:
    """The answer to an OPTIONS preflight, from the URL's CORS configuration alone."""
    headers = cors_headers(cors, request.header("origin"))
    if headers:
        methods = cors.get("AllowMethods") or []
        if methods:
            headers.append(("Access-Control-Allow-Methods", ",".join(methods)))
        allow = cors.get("AllowHeaders") or []
        if allow:
            headers.append(("Access-Control-Allow-Headers", ",".join(allow)))
        if cors.get("MaxAge") is not None:  # 0 is "do not cache", and is sent
            headers.append(("Access-Control-Max-Age", str(int(cors["MaxAge"]))))
    return HttpResponse(200, headers, b"")


def _canonical_query(raw: str) -> str:
    def enc(text: str) -> str:
        return quote(unquote(text), safe="-_.~")

    pairs = (part.partition("=") for part in raw.split("&") if part)
    return "&".join(f"{enc(k)}={enc(v)}" for k, _, v in pairs)


def signature_valid(request: IncomingRequest, raw_path: str, region: str) -> bool:
    """True when `request` carries a SigV4 signature (Authorization header) made with the
    emulator's credentials for service "lambda" in `region` over exactly what arrived:
    the signature is recomputed with botocore over the received method, path, query,
    signed headers and body."""
    match = _AUTH_RE.match(request.header("authorization") or "")
    amz_date = request.header("x-amz-date") or ""
    if match is None or not amz_date:
        return False
    parts = match["cred"].split("/")
    if len(parts) != 5 or parts[1:] != [amz_date[:8], region, "lambda", "aws4_request"]:
        return False
    if not hmac.compare_digest(parts[0], FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]):
        return False
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return False
    if abs(time.time() - when.timestamp()) > SIGNATURE_SKEW_S:
        return False
    signed = match["signed"].split(";")
    if "host" not in signed:
        return False
    headers: dict[str, str] = {}
    for name in signed:
        values = [v for k, v in request.headers if k.lower() == name]
        if not values:
            return False
        headers[name] = ",".join(values)
    content_sha = headers.get("x-amz-content-sha256")
    body_sha = hashlib.sha256(request.body).hexdigest()
    # The body is always part of what is signed: an unsigned payload would let anyone
    # replay a signed request with another body.
    if content_sha is not None and content_sha != body_sha:
        return False
    # A session token, when sent, must be the credentials' own.
    token = request.header("x-amz-security-token")
    if token is not None and not hmac.compare_digest(
        token, FAKE_CREDENTIALS.get("AWS_SESSION_TOKEN", "")
    ):
        return False
    url = f"http://{headers['host']}{raw_path}"
    if request.raw_query:
        # AWS decodes the query and signs it re-encoded the standard way (RFC 3986
        # unreserved characters kept): compare over that, whatever spelling arrived.
        url += f"?{_canonical_query(request.raw_query)}"
    aws_request = AWSRequest(method=request.method, url=url, headers=headers, data=request.body)
    # The names botocore signs under ("X-Amz-Content-SHA256" is looked up by that case).
    if content_sha is not None:
        del aws_request.headers["x-amz-content-sha256"]
        aws_request.headers["X-Amz-Content-SHA256"] = content_sha
    aws_request.context["timestamp"] = amz_date
    auth = SigV4Auth(
        Credentials(
            FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        ),
        "lambda",
        region,
    )
    canonical = auth.canonical_request(aws_request)
    expected = auth.signature(auth.string_to_sign(aws_request, canonical), aws_request)
    return hmac.compare_digest(expected, match["sig"])


def build_url_event(
    request: IncomingRequest, path: str, fu: FunctionUrl, account_id: str, request_id: str
) -> dict[str, Any]:
    """The Function URL event (payload format 2.0) for one request."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in request.headers:
        name = key.lower()
        if name == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    headers["host"] = fu.domain
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers.setdefault("x-forwarded-proto", "https")
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    text = _TEXT_TYPES.match(request.header("content-type") or "") is not None
    now = datetime.datetime.now(datetime.UTC)
    context: dict[str, Any] = {
        "accountId": account_id if fu.auth == "AWS_IAM" else "anonymous",
        "apiId": fu.domain.split(".")[0],
        "domainName": fu.domain,
        "domainPrefix": fu.domain.split(".")[0],
        "http": {
            "method": request.method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": request.source_ip,
            "userAgent": request.header("user-agent") or "",
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if fu.auth == "AWS_IAM":
        context["authorizer"] = {
            "iam": {
                "accessKey": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "accountId": account_id,
                "callerId": account_id,
                "userArn": f"arn:aws:iam::{account_id}:root",
                "userId": account_id,
            }
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": bool(request.body) and not text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if request.body:
        event["body"] = (
            request.body.decode("utf-8", errors="replace")
            if text
            else base64.b64encode(request.body).decode("ascii")
        )
    return event


def read_url_result(result: Any) -> HttpResponse:
    """The function's answer in the 2.0 response format: an object with statusCode, or
    any other JSON value, answered as a 200 JSON body (as Lambda infers it)."""
    if not (isinstance(result, dict) and "statusCode" in result and set(result) <= _RESULT_KEYS):
        body = json.dumps(result).encode()
        return HttpResponse(200, [("Content-Type", "application/json")], body)
    status = result.get("statusCode")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError("statusCode is not an HTTP status")
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(str(name), str(v)) for v in values]
    headers += [("Set-Cookie", str(c)) for c in result.get("cookies") or []]
    text = result.get("body") or ""
    if not isinstance(text, str):
        raise ValueError("body is not a string")
    payload = base64.b64decode(text) if result.get("isBase64Encoded") else text.encode()
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(status, headers, payload)


class FunctionUrlGateway:
    """Answers `/_url/<function-name>/...` from the deployed Function URLs."""

    def __init__(
        self,
        runtime: FunctionRuntime,
        *,
        metrics: MetricStore | None = None,
        rng: Callable[[], float] | None = None,
    ) -> None:
        """`rng` and `metrics` as for scarab.serve.gateway.Gateway (shared with it)."""
        self.runtime = runtime
        self.metrics = metrics if metrics is not None else MetricStore()
        self.rng = rng or random.Random().random

    async def handle(
        self,
        request: IncomingRequest,
        raw_path: str,
        urls: Mapping[str, FunctionUrl],
        region: str,
        account_id: str,
    ) -> HttpResponse:
        """`request.path` is the URL's own path; `raw_path` the whole path as received
        (what a client signs)."""
        rest = raw_path[len(URL_PREFIX) :]
        name = rest.split("/", 1)[0]
        fu = urls.get(name)
        if fu is None:
            return _json(404, "Not Found")
        is_preflight = (
            request.method == "OPTIONS"
            and request.header("origin") is not None
            and request.header("access-control-request-method") is not None
        )
        if is_preflight and fu.cors.get("AllowOrigins"):
            return preflight(fu.cors, request)
        if fu.auth == "AWS_IAM" and not signature_valid(request, raw_path, region):
            return forbidden()
        if fu.auth == "NONE" and not fu.public:
            return forbidden()  # the URL is public only through its resource policy
        request_id = str(uuid.uuid4())
        event = build_url_event(request, request.path, fu, account_id, request_id)
        event_json = json.dumps(event, separators=(",", ":")).encode()
        fn = fu.target.choose(self.rng()) if fu.target is not None else fu.function
        qualifier = fu.target.qualifier if fu.target is not None else None
        started = time.monotonic()
        failed = True
        try:
            result = await self.runtime.invoke(fn, event_json, request_id, float(fn.timeout_s))
            failed = False
            response = read_url_result(result)
        except (InvokeError, InvokeTimeout, ValueError) as exc:
            log.warning("function URL %s: the function failed (%s)", name, exc)
            response = _json(502, "Internal Server Error")
        duration = (time.monotonic() - started) * 1000
        self.metrics.record_invocation(
            Invocation(fn.name, qualifier, fn.version, duration, error=failed)
        )
        if qualifier is not None:
            response.headers.append((VERSION_HEADER, fn.version))
        if fu.cors.get("AllowOrigins"):
            response.headers.extend(cors_headers(fu.cors, request.header("origin")))
        response.headers.append(("x-amzn-RequestId", request_id))
        return response
