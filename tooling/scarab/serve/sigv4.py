"""SigV4 verification for the AWS APIs serve answers itself (`/_s3`, `/_lambda`).

The emulator checks no signature, so serve does, as AWS would: a request must carry a
SigV4 signature made with credentials serve knows (the emulator's fake ones), either in
an Authorization header or as a presigned query (X-Amz-Signature). The signature is
recomputed with botocore's signer over exactly what arrived: the method, the path as
sent (percent-encoded, with serve's prefix: what the client signed), the query, the
signed headers and the body's SHA-256 (or the x-amz-content-sha256 the client declared,
checked against the body).

Limits: S3's chunked signing (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) is verified up to the
seed signature (the chunks' own signatures are not), and a SigV2 or Date-header-only
request is refused rather than verified.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from urllib.parse import unquote

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from scarab.emulator import FAKE_CREDENTIALS

# How far a signature's X-Amz-Date may be from now (SigV4's limit on AWS).
SKEW_S = 15 * 60
# A presigned URL's longest life (X-Amz-Expires), as on AWS: 7 days.
MAX_EXPIRES_S = 7 * 24 * 3600
UNSIGNED = "UNSIGNED-PAYLOAD"
# S3's payload markers that do not hash the body here (see the module's limits).
_S3_PAYLOAD_MARKERS = frozenset(
    {
        UNSIGNED,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    }
)
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<sig>[0-9a-f]{64})$"
)
_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")

# Why a request is refused (each service answers these in its own words).
MISSING = "missing"  # no signature at all: an anonymous request
MALFORMED = "malformed"  # a signature that is not a well-formed SigV4 one
UNKNOWN_KEY = "unknown_key"  # an access key id serve has no secret for
BAD_TOKEN = "bad_token"  # noqa: S105 - a reason, not a token: the session token is not theirs
SKEWED = "skewed"  # X-Amz-Date too far from now
EXPIRED = "expired"  # a presigned URL past its X-Amz-Expires
CONTENT_SHA = "content_sha"  # x-amz-content-sha256 is not the body's
MISMATCH = "mismatch"  # the signature is not the one the request's content gives


class SignatureRefused(Exception):
    """The request is not signed by credentials serve knows; `reason` is one of the
    module's constants."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def emulator_secrets() -> dict[str, str]:
    """The access keys serve knows the secrets of: the emulator's fake credentials."""
    return {FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]: FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}


def emulator_tokens() -> frozenset[str]:
    """The session tokens those credentials come with."""
    token = FAKE_CREDENTIALS.get("AWS_SESSION_TOKEN")
    return frozenset({token} if token else ())


def is_presigned(raw_query: str) -> bool:
    """True when the query carries SigV4 query parameters (a presigned URL)."""
    names = {unquote(p.partition("=")[0]).lower() for p in raw_query.split("&") if p}
    return "x-amz-signature" in names or "x-amz-algorithm" in names


def is_signed(headers: Sequence[tuple[str, str]], raw_query: str) -> bool:
    """True when the request carries a signature to check (header or presigned query)."""
    return any(k.lower() == "authorization" for k, _ in headers) or is_presigned(raw_query)


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """The query decoded (AWS signs it decoded and re-encoded the standard way, whatever
    spelling arrived)."""
    pairs = []
    for part in raw_query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return pairs


class _Verifier(S3SigV4Auth):  # type: ignore[misc]  # botocore has no type hints
    """botocore's signer with the payload hash and path handling chosen per service."""

    def __init__(self, credentials: Credentials, service: str, region: str, payload: str) -> None:
        super().__init__(credentials, service, region)
        self._payload = payload

    def payload(self, request: AWSRequest) -> str:
        return self._payload

    def _normalize_url_path(self, path: str) -> str:
        # S3 signs the path as sent; every other service normalizes and encodes it again.
        if self._service_name == "s3":
            return path
        return str(SigV4Auth._normalize_url_path(self, path))


def _parse_date(amz_date: str) -> float:
    if not _DATE_RE.match(amz_date):
        raise SignatureRefused(MALFORMED, f"X-Amz-Date {amz_date!r} is not yyyymmddThhmmssZ.")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise SignatureRefused(MALFORMED, f"X-Amz-Date {amz_date!r} is not a date.") from None
    return when.replace(tzinfo=datetime.UTC).timestamp()


def verify(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    service: str,
    region: str,
    secrets: Mapping[str, str] | None = None,
    tokens: frozenset[str] | None = None,
    now: float | None = None,
) -> str:
    """The access key id that signed the request; SignatureRefused when none did.

    `raw_path` is the path as the client sent it (percent-encoded, serve's prefix
    included), `raw_query` the query as sent."""
    secrets = emulator_secrets() if secrets is None else secrets
    tokens = emulator_tokens() if tokens is None else tokens
    now = time.time() if now is None else now
    lower: dict[str, list[str]] = {}
    for name, value in headers:
        lower.setdefault(name.lower(), []).append(value)
    authorization = ",".join(lower.get("authorization", []))
    presigned = is_presigned(raw_query)
    pairs = _query_pairs(raw_query)
    if authorization and presigned:
        raise SignatureRefused(MALFORMED, "Only one auth mechanism allowed.")
    if presigned:
        query = {k.lower(): v for k, v in pairs}
        if query.get("x-amz-algorithm") != "AWS4-HMAC-SHA256":
            raise SignatureRefused(MALFORMED, "X-Amz-Algorithm only supports AWS4-HMAC-SHA256.")
        credential = query.get("x-amz-credential", "")
        signed_names = query.get("x-amz-signedheaders", "")
        signature = query.get("x-amz-signature", "")
        amz_date = query.get("x-amz-date", "")
        token = query.get("x-amz-security-token")
        expires_text = query.get("x-amz-expires", "")
        if not re.fullmatch(r"[0-9a-f]{64}", signature) or not expires_text.isdigit():
            raise SignatureRefused(MALFORMED, "The presigned URL's parameters are incomplete.")
        expires = int(expires_text)
        if not 1 <= expires <= MAX_EXPIRES_S:
            raise SignatureRefused(MALFORMED, "X-Amz-Expires must be 1..604800 seconds.")
        # Every query parameter but the signature is signed.
        signed_query = [(k, v) for k, v in pairs if k.lower() != "x-amz-signature"]
        payload = UNSIGNED if service == "s3" else hashlib.sha256(body).hexdigest()
    else:
        if not authorization:
            raise SignatureRefused(MISSING, "The request is not signed.")
        match = _AUTH_RE.match(authorization)
        if match is None:
            raise SignatureRefused(MALFORMED, "The Authorization header is not a SigV4 one.")
        credential, signed_names, signature = match["cred"], match["signed"], match["sig"]
        amz_date = ",".join(lower.get("x-amz-date", []))
        tokens_sent = lower.get("x-amz-security-token")
        token = ",".join(tokens_sent) if tokens_sent is not None else None
        expires = 0
        signed_query = pairs
        declared = ",".join(lower.get("x-amz-content-sha256", [])) or None
        body_sha = hashlib.sha256(body).hexdigest()
        if declared is None:
            payload = body_sha
        elif declared == body_sha or (service == "s3" and declared in _S3_PAYLOAD_MARKERS):
            payload = declared
        else:
            raise SignatureRefused(
                CONTENT_SHA, "The x-amz-content-sha256 header does not match the body."
            )
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not parts[0]:
        raise SignatureRefused(MALFORMED, f"The credential {credential!r} is malformed.")
    access_key, day, scope_region, scope_service = parts[:4]
    secret = secrets.get(access_key)
    if secret is None:
        raise SignatureRefused(UNKNOWN_KEY, "The access key id is not one serve knows.")
    if scope_region != region or scope_service != service:
        raise SignatureRefused(
            MALFORMED,
            f"The credential's scope must be {region}/{service}, not "
            f"{scope_region}/{scope_service}.",
        )
    when = _parse_date(amz_date)
    if day != amz_date[:8]:
        raise SignatureRefused(MALFORMED, "The credential's date is not X-Amz-Date's.")
    if token is not None and token not in tokens:
        raise SignatureRefused(BAD_TOKEN, "The security token is not the credentials' own.")
    if presigned:
        if now > when + expires:
            raise SignatureRefused(EXPIRED, "Request has expired")
        if when - now > SKEW_S:
            raise SignatureRefused(SKEWED, "The presigned URL is dated in the future.")
    elif abs(now - when) > SKEW_S:
        raise SignatureRefused(SKEWED, "The request's X-Amz-Date is too far from now.")
    names = signed_names.split(";")
    if "host" not in names or names != sorted(set(names)):
        raise SignatureRefused(MALFORMED, "SignedHeaders must be sorted and include host.")
    signed_headers: dict[str, str] = {}
    for name in names:
        if name not in lower:
            raise SignatureRefused(MALFORMED, f"The signed header {name!r} is not in the request.")
        signed_headers[name] = ",".join(lower[name])
    request = AWSRequest(
        method=method.upper(),
        url=f"http://{signed_headers['host']}{raw_path or '/'}",
        headers=signed_headers,
        params=signed_query,
    )
    request.context["timestamp"] = amz_date
    credentials = Credentials(access_key, secret)
    auth = _Verifier(credentials, service, region, payload)
    canonical = auth.canonical_request(request)
    if auth.signed_headers(auth.headers_to_sign(request)) != signed_names:
        # A header botocore never signs (user-agent, expect, ...) was named.
        raise SignatureRefused(MISMATCH, "The signed headers cannot be verified.")
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, signature):
        raise SignatureRefused(
            MISMATCH,
            "The request signature we calculated does not match the signature you provided.",
        )
    return access_key
