"""Check an S3 browser-based POST upload against its signed policy, as S3 does.

The emulator (moto) stores whatever a POST form sends: an expired policy, a bad
signature, a file over the content-length-range, a Content-Type or key the policy does
not allow. `scarab serve` checks the form here first (scarab.serve.s3_proxy) and only a
form S3 would accept reaches the emulator. The rules, from S3's documentation of POST
policies (sigv4-HTTPPOSTConstructPolicy, sigv4-UsingHTTPPOST):

- the form is multipart/form-data; fields after the `file` part are ignored;
- `policy` is base64 JSON `{"expiration": ISO-8601, "conditions": [...]}`; signed with
  SigV4 (x-amz-algorithm AWS4-HMAC-SHA256, x-amz-credential, x-amz-date, x-amz-signature:
  the hex HMAC-SHA256 of the base64 policy under the derived signing key) or SigV2
  (AWSAccessKeyId, signature: base64 HMAC-SHA1 of the base64 policy);
- an expired policy is refused; every condition must hold: `{"field": "value"}` and
  `["eq", "$field", "value"]` exact, `["starts-with", "$field", "prefix"]`,
  `["content-length-range", min, max]` on the file's size (400 EntityTooSmall or
  EntityTooLarge); field names are case-insensitive;
- every form field must be covered by a condition, except x-amz-signature, file,
  policy, AWSAccessKeyId, signature and x-ignore-* ("Extra input fields").

Pure: no I/O; the caller gives the secret keys it knows and the clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

# Fields a policy need not cover (S3: "Extra input fields" ignores these).
EXEMPT_FIELDS = frozenset({"x-amz-signature", "file", "policy", "awsaccesskeyid", "signature"})
SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
# S3 refuses forms with more than this many bytes of fields (the file aside).
MAX_FIELDS_BYTES = 20 * 1024


@dataclass(frozen=True)
class PostRefused(Exception):
    """S3's refusal: HTTP status, error code, message (and extra XML elements)."""

    status: int
    code: str
    message: str
    extra: tuple[tuple[str, str], ...] = ()

    def xml(self, request_id: str = "") -> bytes:
        """The error document S3 answers."""
        parts = [f"<Code>{escape(self.code)}</Code>", f"<Message>{escape(self.message)}</Message>"]
        parts += [f"<{k}>{escape(v)}</{k}>" for k, v in self.extra]
        if request_id:
            parts.append(f"<RequestId>{escape(request_id)}</RequestId>")
        text = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>"
        return text.encode()


@dataclass
class PostForm:
    """A parsed POST form: its fields (names as sent, in order) and the file part."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    file: bytes | None = None
    filename: str = ""
    file_content_type: str = ""

    def get(self, name: str) -> str | None:
        """A field's value by case-insensitive name (the first one)."""
        wanted = name.lower()
        return next((v for k, v in self.fields if k.lower() == wanted), None)


@dataclass(frozen=True)
class AcceptedPost:
    """What to store: the key (with ${filename} resolved), the fields, the file."""

    bucket: str
    key: str
    body: bytes
    fields: Mapping[str, str]  # lower-case names
    access_key: str


def _denied(message: str) -> PostRefused:
    return PostRefused(403, "AccessDenied", message)


def _invalid(message: str, name: str = "", value: str = "") -> PostRefused:
    extra = (("ArgumentName", name), ("ArgumentValue", value)) if name else ()
    return PostRefused(400, "InvalidArgument", message, extra)


def boundary_of(content_type: str) -> bytes | None:
    """The multipart boundary of a multipart/form-data Content-Type, else None."""
    message = Message()
    message["content-type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        return None
    boundary = message.get_param("boundary")
    return str(boundary).encode("latin-1") if isinstance(boundary, str) and boundary else None


def parse_form(content_type: str, body: bytes) -> PostForm:
    """Parse a multipart/form-data body with werkzeug's decoder (the fields in order, the
    first `file` part; what follows the file is ignored, as S3 does)."""
    boundary = boundary_of(content_type)
    if boundary is None:
        raise PostRefused(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
            (("Condition", "Bucket POST must be of the enclosure-type multipart/form-data"),),
        )
    decoder = MultipartDecoder(boundary, max_form_memory_size=None)
    decoder.receive_data(body)
    decoder.receive_data(None)
    form = PostForm()
    current: str | None = None  # "field" name, or "\0file" for the file part
    chunks: list[bytes] = []
    fields_size = 0
    try:
        while True:
            event = decoder.next_event()
            if isinstance(event, (NeedData, Epilogue)):
                break
            if isinstance(event, File) and event.name.lower() == "file":
                current = "\0file"
                form.filename = event.filename
                form.file_content_type = event.headers.get("content-type", "")
                chunks = []
            elif isinstance(event, (Field, File)):
                current = event.name
                chunks = []
            elif isinstance(event, Data) and current is not None:
                chunks.append(event.data)
                if event.more_data:
                    continue
                if current == "\0file":
                    form.file = b"".join(chunks)
                    break  # S3 ignores whatever follows the file
                value = b"".join(chunks).decode("utf-8", "replace")
                fields_size += len(value)
                if fields_size > MAX_FIELDS_BYTES:
                    raise _invalid(
                        "Your POST request fields preceding the upload file were too large."
                    )
                form.fields.append((current, value))
                current = None
    except ValueError as exc:  # werkzeug: malformed multipart
        raise _invalid(
            f"The body of your POST request is not well-formed multipart/form-data: {exc}"
        ) from None
    if form.file is None:
        raise _invalid("POST requires exactly one file upload per request.", "file", "0")
    return form


def decode_policy(policy_b64: str) -> dict[str, Any]:
    """The policy document, or InvalidPolicyDocument."""
    try:
        document = json.loads(base64.b64decode(policy_b64, validate=True))
    except (binascii.Error, ValueError):
        raise PostRefused(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
    if not isinstance(document, dict):
        raise PostRefused(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.")
    if "expiration" not in document:
        raise PostRefused(
            400, "InvalidPolicyDocument", "Invalid Policy: Policy missing expiration."
        )
    if not isinstance(document.get("conditions"), list):
        raise PostRefused(
            400, "InvalidPolicyDocument", "Invalid Policy: Policy missing conditions."
        )
    return document


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sigv4_signature(secret: str, date: str, region: str, service: str, policy_b64: str) -> str:
    """SigV4's signature of a POST policy: the derived key's HMAC of the base64 policy."""
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    key = _hmac(key, "aws4_request")
    return hmac.new(key, policy_b64.encode("utf-8"), hashlib.sha256).hexdigest()


def sigv2_signature(secret: str, policy_b64: str) -> str:
    """SigV2's signature of a POST policy: base64 of HMAC-SHA1 of the base64 policy."""
    digest = hmac.new(secret.encode("utf-8"), policy_b64.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


_MISMATCH = PostRefused(
    403,
    "SignatureDoesNotMatch",
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method.",
)


def _unknown_key(access_key: str) -> PostRefused:
    return PostRefused(
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
        (("AWSAccessKeyId", access_key),),
    )


def verify_signature(form: PostForm, policy_b64: str, secrets: Mapping[str, str]) -> str:
    """Check the form's signature of its policy; the access key id it was signed with."""
    algorithm = form.get("x-amz-algorithm")
    if algorithm is not None:
        if algorithm != SIGV4_ALGORITHM:
            raise _invalid("Only AWS4-HMAC-SHA256 is supported.", "X-Amz-Algorithm", algorithm)
        credential = form.get("x-amz-credential")
        signature = form.get("x-amz-signature")
        if not credential or not signature or not form.get("x-amz-date"):
            missing = next(
                n for n in ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date") if not form.get(n)
            )
            raise _invalid(
                f"Bucket POST must contain a field named '{missing}'.  If it is "
                "specified, please check the order of the fields.",
                missing,
            )
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or parts[3] != "s3":
            raise _invalid(
                "Error parsing the X-Amz-Credential parameter.", "X-Amz-Credential", credential
            )
        access_key, date, region, service, _ = parts
        secret = secrets.get(access_key)
        if secret is None:
            raise _unknown_key(access_key)
        expected = sigv4_signature(secret, date, region, service, policy_b64)
        if not hmac.compare_digest(expected, signature.lower()):
            raise _MISMATCH
        return access_key
    access_key_v2 = form.get("AWSAccessKeyId")
    signature_v2 = form.get("signature")
    if access_key_v2 is None or signature_v2 is None:
        raise _invalid(
            "Bucket POST must contain a field named 'AWSAccessKeyId'.  If it is specified, "
            "please check the order of the fields.",
            "AWSAccessKeyId",
        )
    secret = secrets.get(access_key_v2)
    if secret is None:
        raise _unknown_key(access_key_v2)
    if not hmac.compare_digest(sigv2_signature(secret, policy_b64), signature_v2):
        raise _MISMATCH
    return access_key_v2


def parse_expiration(text: Any) -> datetime:
    """The policy's expiration (ISO 8601, UTC)."""
    if not isinstance(text, str):
        raise PostRefused(
            400, "InvalidPolicyDocument", "Invalid Policy: Invalid 'expiration' value."
        )
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PostRefused(
            400,
            "InvalidPolicyDocument",
            f"Invalid Policy: Invalid 'expiration' value: '{text}'",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _condition_text(condition: Any) -> str:
    return json.dumps(condition, separators=(", ", ": "))


def check_conditions(conditions: list[Any], values: Mapping[str, str], size: int) -> set[str]:
    """Check every condition against the form (`values`: lower-case names; includes
    `bucket`); the field names the conditions cover."""
    covered: set[str] = set()
    for condition in conditions:
        failed = _denied(
            f"Invalid according to Policy: Policy Condition failed: {_condition_text(condition)}"
        )
        if isinstance(condition, dict):
            if len(condition) != 1:
                raise PostRefused(
                    400,
                    "InvalidPolicyDocument",
                    "Invalid Policy: Invalid Simple-Condition: "
                    "Simple-Conditions must have exactly one property specified.",
                )
            ((name, expected),) = condition.items()
            name = str(name).lower().removeprefix("$")
            covered.add(name)
            if values.get(name, "") != str(expected):
                raise failed
            continue
        if not isinstance(condition, list) or not condition:
            raise PostRefused(400, "InvalidPolicyDocument", "Invalid Policy: Invalid Condition.")
        operator = str(condition[0]).lower()
        if operator == "content-length-range":
            if len(condition) != 3:
                raise PostRefused(
                    400, "InvalidPolicyDocument", "Invalid Policy: Invalid content-length-range."
                )
            try:
                low, high = int(condition[1]), int(condition[2])
            except (TypeError, ValueError):
                raise PostRefused(
                    400, "InvalidPolicyDocument", "Invalid Policy: Invalid content-length-range."
                ) from None
            if size > high:
                raise PostRefused(
                    400,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size",
                    (("ProposedSize", str(size)), ("MaxSizeAllowed", str(high))),
                )
            if size < low:
                raise PostRefused(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size",
                    (("ProposedSize", str(size)), ("MinSizeAllowed", str(low))),
                )
            continue
        if operator not in ("eq", "starts-with") or len(condition) != 3:
            raise PostRefused(
                400,
                "InvalidPolicyDocument",
                f"Invalid Policy: Invalid Condition: {_condition_text(condition)}",
            )
        target = str(condition[1])
        if not target.startswith("$"):
            raise PostRefused(
                400,
                "InvalidPolicyDocument",
                f"Invalid Policy: Invalid Condition: {_condition_text(condition)}",
            )
        name = target[1:].lower()
        covered.add(name)
        actual = values.get(name, "")
        expected = str(condition[2])
        if operator == "eq":
            ok = actual == expected
        elif name == "content-type" and "," in actual:
            # S3: each of a comma-separated Content-Type list must start with the prefix.
            ok = all(part.strip().startswith(expected) for part in actual.split(","))
        else:
            ok = actual.startswith(expected)
        if not ok:
            raise failed
    return covered


def check_post(
    bucket: str,
    content_type: str,
    body: bytes,
    secrets: Mapping[str, str],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AcceptedPost:
    """Check a POST upload to `bucket` as S3 does; what to store, or PostRefused."""
    form = parse_form(content_type, body)
    policy_b64 = form.get("policy")
    if policy_b64 is None:
        # No policy: an anonymous upload, which a private bucket refuses.
        raise _denied("Access Denied")
    access_key = verify_signature(form, policy_b64, secrets)
    document = decode_policy(policy_b64)
    if parse_expiration(document["expiration"]) <= now():
        raise _denied("Invalid according to Policy: Policy expired.")
    file = form.file if form.file is not None else b""
    values = {k.lower(): v for k, v in reversed(form.fields)}  # the first of repeated names
    key = values.get("key")
    if key is None:
        raise _invalid(
            "Bucket POST must contain a field named 'key'.  If it is specified, "
            "please check the order of the fields.",
            "key",
        )
    key = key.replace("${filename}", form.filename)
    values["key"] = key
    values["bucket"] = bucket
    covered = check_conditions(document["conditions"], values, len(file))
    extra = [
        name
        for name, _ in form.fields
        if name.lower() not in covered
        and name.lower() not in EXEMPT_FIELDS
        and not name.lower().startswith("x-ignore-")
    ]
    if extra:
        raise _denied(
            "Invalid according to Policy: Extra input fields: " + ", ".join(dict.fromkeys(extra))
        )
    values.pop("bucket")
    return AcceptedPost(bucket=bucket, key=key, body=file, fields=values, access_key=access_key)
