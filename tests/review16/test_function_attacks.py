"""Adversarial review of issue 16 at the function (moto server, Gemini test server).

Tests named test_FAILS_* reproduce a finding and fail on the reviewed main."""

from __future__ import annotations

import json
import struct
import threading
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from lens import settings

from tests.function.events import b64, jpeg, response_json, rest_event
from tests.jobs.conftest import Peer
from tests.jobs.stage import Stage
from tests.support.gemini_server import GeminiServer

Invoke = Callable[..., dict[str, Any]]


def _post(
    invoke: Invoke, path: str, body: Any, headers: dict[str, str] | None = None, key_id: str = ""
) -> tuple[int, Any]:
    event = rest_event(
        path=path, body=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    if key_id:
        event["requestContext"]["identity"]["apiKeyId"] = key_id
    response = invoke(event)
    return response["statusCode"], response_json(response)


def _get(invoke: Invoke, job_id: str) -> tuple[int, Any]:
    response = invoke(rest_event(method="GET", path=f"/jobs/{job_id}"))
    return response["statusCode"], response_json(response)


def _put(stage: Stage, data: bytes, content_type: str = "image/jpeg") -> str:
    key = "uploads/" + "ab" * 16
    stage.s3.put_object(Bucket=stage.bucket, Key=key, Body=data, ContentType=content_type)
    return key


# --- uploads read by the function ---------------------------------------------------------


def _png_bomb(side: int) -> bytes:
    """A valid 1-bit grayscale PNG of side x side pixels, all zero: a few KB on disk."""
    raw = (b"\0" + b"\0" * ((side + 7) // 8)) * side

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_upload_is_refused_cleanly(
    stage: Stage, peer: Peer, gemini: GeminiServer, invoke: Invoke
) -> None:
    key = _put(stage, _png_bomb(40000), "image/png")  # 1.6 gigapixels
    status, body = _post(invoke, "/analyze", {"upload": key})
    assert 400 <= status < 500, (status, body)
    assert body["error"]["code"]
    assert len(gemini.requests) == 0


@pytest.mark.parametrize(
    "data",
    [b"<html><script>alert(1)</script></html>", b"PK\x03\x04" + b"\0" * 100, b"GIF8" + b"x" * 10],
)
def test_non_images_under_an_image_grant_are_415(
    stage: Stage, peer: Peer, invoke: Invoke, data: bytes
) -> None:
    key = _put(stage, data)
    status, body = _post(invoke, "/analyze", {"upload": key})
    assert status == 415 and body["error"]["code"] == "unsupported_image", (status, body)


def test_an_object_over_the_limit_put_by_other_means_is_413(
    stage: Stage, peer: Peer, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.UPLOADS_MAX_BYTES_ENV, "2000")
    settings.reset_settings()
    key = _put(stage, jpeg((640, 480)) + b"\0" * 5000)
    status, body = _post(invoke, "/analyze", {"upload": key})
    assert status == 413 and body["error"]["code"] == "upload_too_large", (status, body)


@pytest.mark.parametrize(
    "key",
    [
        "uploads/../uploads/" + "a" * 32,
        "uploads/" + "A" * 32,
        "other/" + "a" * 32,
        "/uploads/" + "a" * 32,
        "uploads/" + "a" * 32 + "\n",
        "uploads/" + "a" * 31,
        12,
        None,
        ["uploads/" + "a" * 32],
    ],
)
def test_bad_upload_keys_are_404_or_422(stage: Stage, peer: Peer, invoke: Invoke, key: Any) -> None:
    status, body = _post(invoke, "/analyze", {"upload": key})
    assert status in (400, 404, 422), (status, body)
    assert body["error"]["code"]


# --- POST /uploads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"content_type": "image/jpeg", "bytes": 0}, 422),
        ({"content_type": "image/jpeg", "bytes": -1}, 422),
        ({"content_type": "image/jpeg", "bytes": 1.5}, 422),
        ({"content_type": "image/jpeg", "bytes": 1000.0}, 422),
        ({"content_type": "image/jpeg", "bytes": "1000"}, 422),
        ({"content_type": "image/jpeg", "bytes": True}, 422),
        ({"content_type": "image/jpeg", "bytes": 1e308}, 422),
        ({"content_type": "image/svg+xml", "bytes": 10}, 415),
        ({"content_type": "text/html", "bytes": 10}, 415),
        ({"content_type": "image/jpeg\x00", "bytes": 10}, 415),
        ({"content_type": "x" * 100000, "bytes": 10}, 415),
        ({"bytes": 10}, 422),
        ({"content_type": "image/jpeg"}, 422),
        ({"content_type": ["image/jpeg"], "bytes": 10}, 422),
        ([], 400),
    ],
)
def test_post_uploads_refuses_bad_bodies_cleanly(
    stage: Stage, invoke: Invoke, body: Any, status: int
) -> None:
    got, answer = _post(invoke, "/uploads", body)
    assert got == status, (got, answer)
    assert answer["error"]["code"]
    assert len(json.dumps(answer)) < 2000


def test_post_uploads_normalises_type_parameters_and_case(stage: Stage, invoke: Invoke) -> None:
    got, answer = _post(
        invoke, "/uploads", {"content_type": " IMAGE/JPEG ; charset=x", "bytes": 10, "x": 1}
    )
    assert got == 201, answer
    assert answer["upload"]["fields"]["Content-Type"] == "image/jpeg"
    policy = json.loads(__import__("base64").b64decode(answer["upload"]["fields"]["policy"]))
    assert ["content-length-range", 1, settings.get_settings().uploads_max_bytes] in policy[
        "conditions"
    ]


# --- idempotency --------------------------------------------------------------------------


def test_the_same_idempotency_key_of_two_callers_is_two_jobs(
    stage: Stage, peer: Peer, invoke: Invoke
) -> None:
    body = {"image": b64(jpeg())}
    headers = {"Idempotency-Key": "k1"}
    a = _post(invoke, "/jobs", body, headers, key_id="alice")
    b = _post(invoke, "/jobs", body, headers, key_id="bob")
    assert a[0] == b[0] == 202, (a, b)
    assert a[1]["job_id"] != b[1]["job_id"]


@pytest.mark.parametrize("value", ["x" * 256, "a\tb", "a\nb"])
def test_bad_idempotency_keys_are_400(stage: Stage, peer: Peer, invoke: Invoke, value: str) -> None:
    status, body = _post(invoke, "/jobs", {"image": b64(jpeg())}, {"Idempotency-Key": value})
    assert status == 400, (status, body)


def test_concurrent_posts_with_one_idempotency_key_make_one_job(
    stage: Stage, peer: Peer, invoke: Invoke
) -> None:
    body = {"image": b64(jpeg())}
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def post() -> None:
        got = _post(invoke, "/jobs", body, {"Idempotency-Key": "race"})
        with lock:
            answers.append(got)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 6
    ids = {a[1]["job_id"] for a in answers if a[0] == 202}
    assert len(ids) == 1, answers
    assert all(a[0] == 202 or a[1]["error"]["code"] == "idempotency_in_progress" for a in answers)
    assert len(peer.events) == 1
    assert len(stage.keys("uploads/")) == 1


# --- dead letters ---------------------------------------------------------------------------


def _sqs(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m{i}", "body": b, "eventSource": "aws:sqs", "attributes": {}}
            for i, b in enumerate(bodies)
        ]
    }


def test_malformed_and_unknown_dead_letters_are_dropped_not_500(
    stage: Stage, peer: Peer, invoke: Invoke
) -> None:
    answer = invoke(
        _sqs(
            [
                "",
                "null",
                "[]",
                '{"scarab_job": 5}',
                '{"scarab_job": "' + "f" * 32 + '"}',
                '{"scarab_job": "scarab-jobs#x"}',
                "\udcff",
            ]
        )
    )
    assert answer == {"batchItemFailures": []}


def test_a_job_event_with_a_non_string_id_is_not_a_500_traceback(
    stage: Stage, peer: Peer, invoke: Invoke
) -> None:
    for event in ({"scarab_job": "../../x"}, {"scarab_job": "F" * 32}, {"scarab_job": ""}):
        answer = invoke(event)
        assert answer.get("status") == "unknown", answer
