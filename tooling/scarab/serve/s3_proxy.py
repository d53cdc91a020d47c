"""S3 at `/_s3/...` on serve's own port: the emulator's S3, with what S3 enforces and
moto does not.

The functions' workers get AWS_ENDPOINT_URL_S3 = `<serve>/_s3` (scarab.serve.server), so
their S3 calls come here and the presigned POSTs they hand out point here too
(path-style: `<serve>/_s3/<bucket>`). A browser POST upload (multipart/form-data to
the bucket) is checked against its signed policy by scarab.serve.post_policy and, when
S3 would accept it, stored in the emulator with PutObject (the form's key, Content-Type
and x-amz-meta-*); S3's answer follows (204, or success_action_status 200/201). Any
multipart/form-data POST to a bucket is such a form, whatever its query (S3 answers a
browser POST as POST Object; its subresource POSTs, ?delete or ?uploads, are signed
requests with other bodies). Every other request must be signed (SigV4, Authorization
header or presigned query) by the emulator's credentials, as the private bucket on AWS
refuses anonymous requests with 403 AccessDenied; the emulator checks no signature, so
serve does (scarab.serve.sigv4). A signed request is forwarded to the emulator
unchanged (method, path, query, headers, body) and its answer relayed.

CORS as S3 does it, from the bucket's CORS configuration (GetBucketCors on the
emulator): OPTIONS preflights are answered here, and responses to a request with an
Origin a rule allows carry Access-Control-Allow-Origin (moto's own blanket `*` is
dropped: the browser must see the bucket's rules, as on AWS).
"""

from __future__ import annotations

import asyncio
import fnmatch
import http.client
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from scarab.emulator import emulator_session
from scarab.serve import sigv4
from scarab.serve.post_policy import AcceptedPost, PostRefused, check_post
from scarab.serve.responses import HttpResponse

log = logging.getLogger("scarab.serve")

PREFIX = "/_s3"
# boto3's service-specific endpoint variable for S3.
ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"
# What one signed request may carry here (S3's single PUT and POST maximum is 5 GB;
# locally the body is held in memory, so a little less than a real limit).
BODY_LIMIT = 5 * 1024**3
# A browser form: the stage's largest upload (the functions' SCARAB_UPLOADS_MAX_BYTES, the
# most a policy they sign allows) plus room for the form's fields (S3 allows 20 KB).
UPLOADS_MAX_BYTES_ENV = "SCARAB_UPLOADS_MAX_BYTES"
FORM_OVERHEAD = 1024 * 1024
# Headers that belong to one hop, not to the request or answer.
_HOP = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "expect",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    }
)
# Form fields PutObject takes as headers (lower-case form name -> PutObject parameter).
_PUT_PARAMETERS = {
    "content-type": "ContentType",
    "cache-control": "CacheControl",
    "content-disposition": "ContentDisposition",
    "content-encoding": "ContentEncoding",
    "x-amz-server-side-encryption": "ServerSideEncryption",
    "x-amz-storage-class": "StorageClass",
    "x-amz-tagging": "Tagging",
}
_CORS_DENIED = (
    "CORSResponse: This CORS request is not allowed. This is usually because the "
    "evalution of Origin, request method / Access-Control-Request-Method or "
    "Access-Control-Request-Headersare not whitelisted by the resource's CORS spec."
)


def _xml_error(error: PostRefused, request_id: str) -> HttpResponse:
    return HttpResponse(
        error.status,
        [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)],
        error.xml(request_id),
    )


def emulator_secrets() -> dict[str, str]:
    """The access keys serve knows the secrets of: the emulator's fake credentials."""
    return sigv4.emulator_secrets()


# S3's answers to a request its signature does not authorize (status, code, message).
_SIGNATURE_ERRORS = {
    sigv4.MISSING: (403, "AccessDenied", "Access Denied"),
    sigv4.MALFORMED: (400, "AuthorizationHeaderMalformed", ""),
    sigv4.UNKNOWN_KEY: (
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    sigv4.BAD_TOKEN: (400, "InvalidToken", "The provided token is malformed or otherwise invalid."),
    sigv4.SKEWED: (
        403,
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
    ),
    sigv4.EXPIRED: (403, "AccessDenied", "Request has expired"),
    sigv4.CONTENT_SHA: (
        400,
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
    sigv4.MISMATCH: (
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
    ),
}


def signature_refusal(error: sigv4.SignatureRefused) -> PostRefused:
    """S3's error for a request whose signature does not hold."""
    status, code, message = _SIGNATURE_ERRORS[error.reason]
    return PostRefused(status, code, message or error.message)


def is_form_post(method: str, key: str, content_type: str) -> bool:
    """A browser's POST Object: multipart/form-data to the bucket itself."""
    media = content_type.partition(";")[0].strip().lower()
    return method == "POST" and not key and media == "multipart/form-data"


def _matches(pattern: str, value: str) -> bool:
    """S3's CORS patterns: `*` anywhere (one wildcard), case-sensitive for origins."""
    return pattern == "*" or fnmatch.fnmatchcase(value, pattern)


def cors_rule(
    rules: Sequence[Mapping[str, Any]], origin: str, method: str, headers: Sequence[str] = ()
) -> Mapping[str, Any] | None:
    """The first CORS rule that allows `origin`, `method` and every requested header."""
    for rule in rules:
        if not any(_matches(str(o), origin) for o in rule.get("AllowedOrigins") or ()):
            continue
        if method.upper() not in {str(m).upper() for m in rule.get("AllowedMethods") or ()}:
            continue
        allowed = [str(h).lower() for h in rule.get("AllowedHeaders") or ()]
        if all(any(_matches(a, h.lower()) for a in allowed) for h in headers if h):
            return rule
    return None


def _allow_origin(rule: Mapping[str, Any], origin: str) -> str:
    return "*" if "*" in (rule.get("AllowedOrigins") or ()) else origin


def cors_headers(rule: Mapping[str, Any], origin: str) -> list[tuple[str, str]]:
    """What a response to an allowed cross-origin request carries."""
    headers = [
        ("Access-Control-Allow-Origin", _allow_origin(rule, origin)),
        ("Access-Control-Allow-Methods", ", ".join(rule.get("AllowedMethods") or ())),
        ("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"),
    ]
    if rule.get("ExposeHeaders"):
        headers.append(("Access-Control-Expose-Headers", ", ".join(rule["ExposeHeaders"])))
    if rule.get("MaxAgeSeconds") is not None:
        headers.append(("Access-Control-Max-Age", str(rule["MaxAgeSeconds"])))
    return headers


def bucket_and_key(path: str) -> tuple[str, str]:
    """`/<bucket>/<key>` (path-style) -> (bucket, key); both may be empty."""
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def uploads_max_bytes(environments: Iterable[Mapping[str, str]]) -> int | None:
    """The largest SCARAB_UPLOADS_MAX_BYTES among the functions' environments, if any."""
    sizes = [
        int(env[UPLOADS_MAX_BYTES_ENV])
        for env in environments
        if str(env.get(UPLOADS_MAX_BYTES_ENV, "")).isdigit()
    ]
    return max(sizes) if sizes else None


class S3Proxy:
    """Answers `/_s3/...`: the POST policy check, CORS, and the emulator's S3 behind."""

    def __init__(
        self,
        emulator_url: str,
        region: str,
        secrets: Mapping[str, str] | None = None,
        form_max: Callable[[], int | None] | None = None,
    ) -> None:
        """`form_max`: the largest upload a form may carry now (None: BODY_LIMIT)."""
        self.emulator_url = emulator_url.rstrip("/")
        self.form_max = form_max or (lambda: None)
        self.region = region
        self.secrets = dict(secrets if secrets is not None else emulator_secrets())
        config = Config(
            connect_timeout=3,
            read_timeout=60,
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path"},
        )
        self._s3 = emulator_session(region).client(
            "s3", endpoint_url=self.emulator_url, config=config
        )

    def body_limit(
        self, method: str, raw_path: str, raw_query: str, headers: Sequence[tuple[str, str]]
    ) -> int:
        """How much of the request's body to hold (from its head, before reading it): a
        form up to the stage's largest upload, a signed request up to BODY_LIMIT, an
        unsigned one nothing (it is refused whatever it carries)."""
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        bucket, key = bucket_and_key(raw_path)
        if bucket and is_form_post(method, key, content_type):
            largest = self.form_max()
            return BODY_LIMIT if largest is None else min(BODY_LIMIT, largest + FORM_OVERHEAD)
        if sigv4.is_signed(headers, raw_query):
            return BODY_LIMIT
        return 0

    async def handle(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        too_large: bool,
        base_url: str,
    ) -> HttpResponse:
        """One request; `raw_path` below /_s3 as sent (still percent-encoded),
        `base_url` where this proxy answers (for the Location of a stored upload)."""
        request_id = uuid.uuid4().hex[:16].upper()
        lower = {k.lower(): v for k, v in headers}
        bucket, key = bucket_and_key(raw_path)
        origin = lower.get("origin", "")
        if method == "OPTIONS" and bucket:
            return await self._preflight(bucket, origin, lower, request_id)
        form = bool(bucket) and is_form_post(method, key, lower.get("content-type", ""))
        if too_large and (form or sigv4.is_signed(headers, raw_query)):
            response = _xml_error(
                PostRefused(
                    400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
                ),
                request_id,
            )
        elif form:
            # Whatever the query: S3 takes a browser's form as POST Object.
            response = await self._post_upload(bucket, lower, body, request_id, base_url)
        else:
            # An unsigned request is refused below whatever its (unread) body was.
            refusal = await asyncio.to_thread(
                self._unauthorized, method, raw_path, raw_query, headers, body
            )
            if refusal is not None:
                response = _xml_error(refusal, request_id)
            else:
                response = await asyncio.to_thread(
                    self._forward, method, raw_path, raw_query, headers, body
                )
        if origin and bucket:
            rule = await self._rule(bucket, origin, method)
            if rule is not None:
                response.headers.extend(cors_headers(rule, origin))
        return response

    def _unauthorized(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
    ) -> PostRefused | None:
        """Why S3 would refuse the request's signature, or None when it holds. The client
        signed the path it sent: serve's prefix included."""
        try:
            sigv4.verify(
                method=method,
                raw_path=PREFIX + raw_path,
                raw_query=raw_query,
                headers=headers,
                body=body,
                service="s3",
                region=self.region,
                secrets=self.secrets,
            )
        except sigv4.SignatureRefused as refused:
            log.info("S3 %s %s refused: %s", method, raw_path[:200], refused.message)
            return signature_refusal(refused)
        return None

    async def _rules(self, bucket: str) -> list[Mapping[str, Any]]:
        def read() -> list[Mapping[str, Any]]:
            try:
                return list(self._s3.get_bucket_cors(Bucket=bucket).get("CORSRules") or [])
            except (ClientError, BotoCoreError):
                return []  # no configuration (or no bucket): no cross-origin access

        return await asyncio.to_thread(read)

    async def _rule(self, bucket: str, origin: str, method: str) -> Mapping[str, Any] | None:
        return cors_rule(await self._rules(bucket), origin, method)

    async def _preflight(
        self, bucket: str, origin: str, headers: Mapping[str, str], request_id: str
    ) -> HttpResponse:
        wanted = headers.get("access-control-request-method", "")
        requested = [
            h.strip() for h in headers.get("access-control-request-headers", "").split(",")
        ]
        if not origin or not wanted:
            refusal = PostRefused(
                400, "BadRequest", "Insufficient information. Origin request header needed."
            )
            return _xml_error(refusal, request_id)
        rule = cors_rule(await self._rules(bucket), origin, wanted, requested)
        if rule is None:
            return _xml_error(PostRefused(403, "AccessForbidden", _CORS_DENIED), request_id)
        allowed = cors_headers(rule, origin)
        if any(requested):
            allowed.append(("Access-Control-Allow-Headers", ", ".join(h for h in requested if h)))
        return HttpResponse(200, [("Content-Length", "0"), *allowed], b"")

    async def _post_upload(
        self,
        bucket: str,
        headers: Mapping[str, str],
        body: bytes,
        request_id: str,
        base_url: str,
    ) -> HttpResponse:
        try:
            # In a thread: parsing a large form takes a while, and serve's loop runs on.
            accepted = await asyncio.to_thread(
                check_post, bucket, headers.get("content-type", ""), body, self.secrets
            )
        except PostRefused as refusal:
            log.info("S3 POST to %s refused: %s %s", bucket, refusal.code, refusal.message)
            return _xml_error(refusal, request_id)
        try:
            etag = await asyncio.to_thread(self._store, accepted)
        except ClientError as exc:
            return self._client_error(exc, request_id)
        except BotoCoreError as exc:
            unavailable = PostRefused(503, "ServiceUnavailable", f"The emulator: {exc}")
            return _xml_error(unavailable, request_id)
        location = f"{base_url.rstrip('/')}/{quote(bucket)}/{quote(accepted.key)}"
        answer = [("ETag", etag), ("Location", location), ("x-amz-request-id", request_id)]
        redirect = accepted.fields.get("success_action_redirect") or accepted.fields.get("redirect")
        if redirect and urlsplit(redirect).scheme in ("http", "https"):
            sep = "&" if "?" in redirect else "?"
            target = (
                f"{redirect}{sep}bucket={quote(bucket)}&key={quote(accepted.key)}"
                f"&etag={quote(etag)}"
            )
            return HttpResponse(
                303, [("ETag", etag), ("Location", target), ("x-amz-request-id", request_id)], b""
            )
        status = accepted.fields.get("success_action_status", "")
        if status == "201":
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>'
                f"<Location>{location}</Location><Bucket>{bucket}</Bucket>"
                f"<Key>{accepted.key}</Key><ETag>{etag}</ETag></PostResponse>"
            )
            return HttpResponse(201, [("Content-Type", "application/xml"), *answer], xml.encode())
        return HttpResponse(200 if status == "200" else 204, answer, b"")

    def _store(self, accepted: AcceptedPost) -> str:
        """PutObject the accepted upload into the emulator; its ETag."""
        params: dict[str, Any] = {"Bucket": accepted.bucket, "Key": accepted.key}
        for field, parameter in _PUT_PARAMETERS.items():
            if accepted.fields.get(field):
                params[parameter] = accepted.fields[field]
        metadata = {
            name.removeprefix("x-amz-meta-"): value
            for name, value in accepted.fields.items()
            if name.startswith("x-amz-meta-")
        }
        if metadata:
            params["Metadata"] = metadata
        result = self._s3.put_object(Body=accepted.body, **params)
        return str(result.get("ETag") or "")

    @staticmethod
    def _client_error(exc: ClientError, request_id: str) -> HttpResponse:
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
        refusal = PostRefused(
            status, str(error.get("Code") or "InternalError"), str(error.get("Message") or "")
        )
        return _xml_error(refusal, request_id)

    def _forward(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
    ) -> HttpResponse:
        """The request as it came, to the emulator; its answer as it came back."""
        target = urlsplit(self.emulator_url)
        forwarded = [(k, v) for k, v in headers if k.lower() not in _HOP]
        forwarded.append(("Host", target.netloc))
        if body or method in ("PUT", "POST"):
            forwarded.append(("Content-Length", str(len(body))))
        path = (raw_path or "/") + (f"?{raw_query}" if raw_query else "")
        connection = http.client.HTTPConnection(
            target.hostname or "127.0.0.1", target.port or 80, timeout=120
        )
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for key, value in forwarded:
                connection.putheader(key, value)
            connection.endheaders(body or None)
            answer = connection.getresponse()
            data = answer.read()
            out = [
                (k, v)
                for k, v in answer.getheaders()
                if k.lower() not in _HOP and not k.lower().startswith("access-control-")
            ]
            length = answer.getheader("Content-Length")
            if method == "HEAD" and length is not None:
                out.append(("Content-Length", length))  # what the object's size is
            return HttpResponse(answer.status, out, data)
        except OSError as exc:
            refusal = PostRefused(503, "ServiceUnavailable", f"The emulator does not answer: {exc}")
            return _xml_error(refusal, "")
        finally:
            connection.close()
