"""Presigned uploads through lens.handler.lambda_handler against the moto server: the
grant and its policy document, the refusals, and /analyze reading (then deleting) an
upload; the type and size are checked again from the object itself."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from lens import settings

from tests.function.events import b64, jpeg, png, response_json, rest_event
from tests.jobs.stage import Stage, make_stage
from tests.support.gemini_server import SAMPLE_ANALYSIS, GeminiServer
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator
Invoke = Callable[..., dict[str, Any]]
KEY = "uploads/" + "0123456789abcdef" * 2


@pytest.fixture
def stage(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Stage:
    return make_stage(monkeypatch, table=False)


def _post(invoke: Invoke, path: str, body: Any) -> tuple[int, Any]:
    response = invoke(
        rest_event(path=path, body=body, headers={"Content-Type": "application/json"})
    )
    return response["statusCode"], response_json(response)


def _post_form(url: str, fields: dict[str, str], data: bytes, content_type: str) -> int:
    """POST a multipart form as a browser does: the grant's fields, then the file."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url,
        data=b"".join(parts),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        status: int = response.status
        return status


def _grant(invoke: Invoke, content_type: str = "image/jpeg", size: int = 1000) -> Any:
    status, body = _post(invoke, "/uploads", {"content_type": content_type, "bytes": size})
    assert status == 201, body
    return body["upload"]


def test_the_grant_is_a_presigned_post_whose_policy_pins_key_type_and_size(
    stage: Stage, aws: MotoServer, invoke: Invoke
) -> None:
    before = time.time()
    upload = _grant(invoke, "image/png", 5000)
    assert upload["key"].startswith("uploads/") and len(upload["key"]) == len(KEY)
    assert upload["max_bytes"] == settings.DEFAULT_UPLOADS_MAX_MB * settings.MIB
    # A local endpoint is addressed by path (what scarab serve's /_s3 forwards).
    assert upload["url"] == f"{aws.url}/{stage.bucket}"
    fields = upload["fields"]
    assert fields["key"] == upload["key"] and fields["Content-Type"] == "image/png"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256" and fields["x-amz-signature"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"bucket": stage.bucket} in conditions
    assert {"key": upload["key"]} in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, upload["max_bytes"]] in conditions
    expiration = time.mktime(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    expiration -= time.timezone  # the policy's time is UTC
    assert before + 290 <= expiration <= time.time() + 310
    expires_at = time.mktime(time.strptime(upload["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(expires_at - time.timezone - expiration) <= 2
    # The form works: the object lands under the key, with the pinned type.
    data = png()
    status = _post_form(upload["url"], fields, data, "image/png")
    assert status in (200, 201, 204)
    got = stage.s3.get_object(Bucket=stage.bucket, Key=upload["key"])
    assert got["Body"].read() == data and got["ContentType"] == "image/png"


def test_the_configured_limit_is_the_grant_s_and_larger_files_are_413(
    stage: Stage, monkeypatch: pytest.MonkeyPatch, invoke: Invoke
) -> None:
    monkeypatch.setenv(settings.UPLOADS_MAX_BYTES_ENV, str(2 * settings.MIB))
    settings.reset_settings()
    assert _grant(invoke, size=2 * settings.MIB)["max_bytes"] == 2 * settings.MIB
    status, body = _post(
        invoke, "/uploads", {"content_type": "image/jpeg", "bytes": 2 * settings.MIB + 1}
    )
    assert (status, body["error"]["code"]) == (413, "upload_too_large")


@pytest.mark.parametrize("size", [10**400, 10**20], ids=["1e400", "1e20"])
def test_an_enormous_bytes_is_413_with_a_readable_message(
    stage: Stage, invoke: Invoke, size: int
) -> None:
    # 10**400 is valid JSON but too large for a float: the size's description must not
    # overflow (it was a 500 internal_error).
    status, body = _post(invoke, "/uploads", {"content_type": "image/jpeg", "bytes": size})
    assert (status, body["error"]["code"]) == (413, "upload_too_large")
    assert "over 1,000 TB" in body["error"]["message"]
    assert len(json.dumps(body)) < 1000


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"content_type": "text/plain", "bytes": 10}, (415, "unsupported_media_type")),
        ({"content_type": "image/svg+xml", "bytes": 10}, (415, "unsupported_media_type")),
        ({"content_type": "image/jpeg"}, (422, "invalid_field")),
        ({"content_type": "image/jpeg", "bytes": 0}, (422, "invalid_field")),
        ({"content_type": "image/jpeg", "bytes": "12"}, (422, "invalid_field")),
        ({"content_type": "image/jpeg", "bytes": True}, (422, "invalid_field")),
        ({"bytes": 12}, (422, "invalid_field")),
        ([1, 2], (400, "invalid_body")),
        ("{not json", (400, "malformed_json")),
    ],
)
def test_bad_grant_requests_are_refused(
    stage: Stage, invoke: Invoke, body: Any, expected: tuple[int, str]
) -> None:
    status, answer = _post(invoke, "/uploads", body)
    assert (status, answer["error"]["code"]) == expected
    assert stage.keys() == []


def test_without_a_bucket_uploads_are_503(
    aws: MotoServer, gemini: GeminiServer, invoke: Invoke
) -> None:
    status, body = _post(invoke, "/uploads", {"content_type": "image/jpeg", "bytes": 10})
    assert (status, body["error"]["code"]) == (503, "uploads_unavailable")
    status, body = _post(invoke, "/analyze", {"upload": KEY})
    assert (status, body["error"]["code"]) == (503, "uploads_unavailable")


def test_an_upload_is_analyzed_like_an_inline_image_then_deleted(
    stage: Stage, gemini: GeminiServer, invoke: Invoke
) -> None:
    image = jpeg((640, 480))
    upload = _grant(invoke, size=len(image))
    stage.s3.put_object(Bucket=stage.bucket, Key=upload["key"], Body=image)
    status, body = _post(invoke, "/analyze", {"upload": upload["key"], "imageType": "tomb"})
    assert status == 200, body
    assert body["analysis"] == SAMPLE_ANALYSIS
    status, inline = _post(invoke, "/analyze", {"image": b64(image), "imageType": "tomb"})
    assert status == 200
    assert body["image"] == inline["image"] and body["model"] == inline["model"]
    assert len(gemini.requests) == 2
    assert stage.keys() == []  # deleted after the answer


@pytest.mark.parametrize(
    "key",
    [
        KEY,  # well-formed, never uploaded
        "uploads/0123",
        "uploads/" + "0123456789ABCDEF" * 2,
        "uploads/../secrets/" + "0" * 32,
        "other/" + "0123456789abcdef" * 2,
        "/" + KEY,
        "",
    ],
)
def test_unknown_or_foreign_keys_are_404(
    stage: Stage, gemini: GeminiServer, invoke: Invoke, key: str
) -> None:
    # An object outside the prefix exists, and is still never read.
    stage.s3.put_object(Bucket=stage.bucket, Key="other/" + "0123456789abcdef" * 2, Body=jpeg())
    status, body = _post(invoke, "/analyze", {"upload": key})
    assert (status, body["error"]["code"]) == (404, "upload_not_found")
    assert gemini.requests == []
    assert stage.keys() == ["other/" + "0123456789abcdef" * 2]


def test_the_type_is_sniffed_from_the_object_not_its_content_type(
    stage: Stage, gemini: GeminiServer, invoke: Invoke
) -> None:
    stage.s3.put_object(
        Bucket=stage.bucket, Key=KEY, Body=b"<html>not a photo</html>", ContentType="image/jpeg"
    )
    status, body = _post(invoke, "/analyze", {"upload": KEY})
    assert (status, body["error"]["code"]) == (415, "unsupported_image")
    assert gemini.requests == []
    assert stage.keys() == []  # a definitive refusal: nothing a retry could use


def test_an_object_over_the_limit_is_413(
    stage: Stage, gemini: GeminiServer, monkeypatch: pytest.MonkeyPatch, invoke: Invoke
) -> None:
    monkeypatch.setenv(settings.UPLOADS_MAX_BYTES_ENV, "2048")
    settings.reset_settings()
    stage.s3.put_object(Bucket=stage.bucket, Key=KEY, Body=jpeg((400, 400), quality=95))
    status, body = _post(invoke, "/analyze", {"upload": KEY})
    assert (status, body["error"]["code"]) == (413, "upload_too_large")
    assert gemini.requests == []


def test_image_and_upload_together_are_422(
    stage: Stage, gemini: GeminiServer, invoke: Invoke
) -> None:
    stage.s3.put_object(Bucket=stage.bucket, Key=KEY, Body=jpeg())
    status, body = _post(invoke, "/analyze", {"image": b64(jpeg()), "upload": KEY})
    assert (status, body["error"]["code"]) == (422, "invalid_field")
    assert stage.keys() == [KEY]


def test_an_upstream_failure_keeps_the_upload_for_a_retry(
    stage: Stage, gemini: GeminiServer, monkeypatch: pytest.MonkeyPatch, invoke: Invoke
) -> None:
    monkeypatch.setenv("SCARAB_MAX_ATTEMPTS", "1")
    settings.reset_settings()
    stage.s3.put_object(Bucket=stage.bucket, Key=KEY, Body=jpeg())
    gemini.reply_error(500)
    status, body = _post(invoke, "/analyze", {"upload": KEY})
    assert status == 502, body
    assert stage.keys() == [KEY]
    status, body = _post(invoke, "/analyze", {"upload": KEY})
    assert status == 200, body
    assert stage.keys() == []
