"""Presigned uploads: grants for POST /uploads, and reading an upload for a route.

An upload is an object `uploads/<32 lowercase hex>` in the stage's uploads bucket
(SCARAB_UPLOADS_BUCKET), written by the client with a presigned S3 POST whose policy
pins the key, the Content-Type and the size (1..SCARAB_UPLOADS_MAX_BYTES) for 300 s.
The routes that take `"upload": key` read it with `read_upload` (size checked again,
the type sniffed from the bytes: S3 trusts the client's Content-Type) and delete it
after the answer with `delete_upload`.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from lens.clients import client
from lens.errors import ApiError
from lens.images import describe_bytes, sniff_format
from lens.observability import logger
from lens.settings import UPLOADS_PREFIX, get_settings

GRANT_SECONDS = 300
CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
_MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
KEY_PATTERN = re.compile(rf"^{re.escape(UPLOADS_PREFIX)}[0-9a-f]{{32}}$")


def unavailable() -> ApiError:
    return ApiError(
        503, "uploads_unavailable", "Uploads are not configured for this stage (no bucket)."
    )


def not_found() -> ApiError:
    return ApiError(404, "upload_not_found", "There is no such upload; it may have expired.")


def bucket() -> str:
    """The uploads bucket; 503 uploads_unavailable when the stage has none."""
    name = get_settings().uploads_bucket
    if not name:
        raise unavailable()
    return name


def new_key() -> str:
    return UPLOADS_PREFIX + secrets.token_hex(16)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def grant(content_type: str, size: int) -> dict[str, Any]:
    """A presigned POST for one object of `content_type` and at most max_bytes
    (413 upload_too_large, 415 unsupported_media_type, 503 uploads_unavailable)."""
    name = bucket()
    max_bytes = get_settings().uploads_max_bytes
    if content_type not in CONTENT_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Uploads take {', '.join(CONTENT_TYPES)}; this is {content_type[:64]!r}.",
        )
    if size > max_bytes:
        raise ApiError(
            413,
            "upload_too_large",
            f"The file is {describe_bytes(size)}; the limit is {describe_bytes(max_bytes)}.",
        )
    key = new_key()
    expires = datetime.now(UTC) + timedelta(seconds=GRANT_SECONDS)
    try:
        post = client("s3").generate_presigned_post(
            Bucket=name,
            Key=key,
            Fields={"Content-Type": content_type},
            # boto3 adds {"bucket"} and {"key"} (exact) itself.
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=GRANT_SECONDS,
        )
    except Exception as exc:  # no credentials: signing needs them
        _failed("sign", exc)
        raise unavailable() from None
    return {
        "url": post["url"],
        "fields": {str(k): str(v) for k, v in post["fields"].items()},
        "key": key,
        "expires_at": _iso(expires),
        "max_bytes": max_bytes,
    }


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _failed(what: str, exc: Exception) -> None:
    logger.warning(
        f"uploads bucket {what} failed",
        extra={"error": f"{type(exc).__name__}: {str(exc)[:300]}"},
    )


def check_key(key: object) -> str:
    """`key` when it is an upload key; 404 upload_not_found otherwise (malformed, or
    outside uploads/: never an S3 call for a key the role must not read)."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise not_found()
    return key


def head_upload(key: str) -> int:
    """The size of upload `key` (404 when absent, 413 over the limit, 503 unreadable)."""
    name = bucket()
    check_key(key)
    try:
        head = client("s3").head_object(Bucket=name, Key=key)
    except Exception as exc:
        if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise not_found() from None
        _failed("read", exc)
        raise unavailable() from None
    size = int(head.get("ContentLength", 0))
    max_bytes = get_settings().uploads_max_bytes
    if size > max_bytes:
        raise ApiError(
            413,
            "upload_too_large",
            f"The upload is {describe_bytes(size)}; the limit is {describe_bytes(max_bytes)}.",
        )
    return size


def read_upload(key: str) -> bytes:
    """The bytes of upload `key`, checked: size (413 upload_too_large) and an image by
    content (415 unsupported_image); 404 upload_not_found, 503 uploads_unavailable."""
    name = bucket()
    head_upload(key)
    max_bytes = get_settings().uploads_max_bytes
    try:
        got = client("s3").get_object(Bucket=name, Key=key)
        # One byte more than allowed: an object replaced since the HeadObject is caught.
        data: bytes = got["Body"].read(max_bytes + 1)
    except Exception as exc:
        if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise not_found() from None
        _failed("read", exc)
        raise unavailable() from None
    if len(data) > max_bytes:
        raise ApiError(413, "upload_too_large", f"The upload is over {describe_bytes(max_bytes)}.")
    if sniff_format(data) is None:
        raise ApiError(
            415,
            "unsupported_image",
            "The upload is not a supported image; send a JPEG, PNG, WebP or GIF photo.",
        )
    return data


def store_upload(data: bytes) -> str:
    """Write `data` (an image) as a new upload; its key. 503 when the bucket fails."""
    name = bucket()
    key = new_key()
    fmt = sniff_format(data)
    try:
        client("s3").put_object(
            Bucket=name,
            Key=key,
            Body=data,
            ContentType=_MIME.get(fmt or "", "application/octet-stream"),
        )
    except Exception as exc:
        _failed("write", exc)
        raise unavailable() from None
    return key


def delete_upload(key: str) -> None:
    """Delete upload `key` (best effort: the bucket's lifecycle rule removes leftovers)."""
    try:
        client("s3").delete_object(Bucket=bucket(), Key=key)
    except Exception as exc:
        _failed("delete", exc)
