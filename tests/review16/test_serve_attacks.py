"""Adversarial review of issue 16 through a real `scarab serve` (emulator S3, DynamoDB,
SQS; serve's /_s3 policy check and /_lambda async invocations).

Tests named test_FAILS_* reproduce a finding and fail on the reviewed main."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.serve.conftest import serve_env
from tests.serve.support import http, make_project
from tests.serve.test_jobs_flow import Stack, _jpeg, _multipart, _post_form
from tests.support.gemini_server import GeminiServer
from tests.support.ports import wait_until

TOML = """\
app = "scarab"
stage = "dev"

[function]
timeout = 30

[function.environment]
SCARAB_MAX_ATTEMPTS = "1"

[api]
throttle_rate = 5000
throttle_burst = 5000
quota_limit = 10000000

[cache]
ttl_seconds = 0

[uploads]
max_mb = 1

[jobs]
retries = 1
"""


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, gemini_session_server: GeminiServer
) -> Iterator[Stack]:
    from tests.support.serve_process import start_serve

    project = make_project(tmp_path_factory.mktemp("review16"), TOML)
    proc = start_serve(project, env=serve_env(gemini_session_server))
    try:
        yield Stack(proc, project, gemini_session_server)
    finally:
        proc.stop()
        print(proc.output()[-20000:])


@pytest.fixture(autouse=True)
def _fresh_gemini(stack: Stack) -> None:
    stack.gemini.reset()


def _keys(stack: Stack) -> list[str]:
    listed = stack.s3().list_objects_v2(Bucket=stack.bucket())
    return [o["Key"] for o in listed.get("Contents", [])]


def _raw_post(url: str, body: bytes, ctype: str) -> Any:
    return http(url, "POST", body, {"Content-Type": ctype})


# --- /_s3: the policy check ---------------------------------------------------------------


def test_FAILS_a_query_string_on_the_bucket_url_skips_the_policy_check(stack: Stack) -> None:
    """serve checks a POST only when the URL has no query; `?x=1` sends the form to moto
    unchecked, which stores it: an oversize, non-image file under a key of our choosing,
    with a tampered policy. (s3_proxy.py S3Proxy.handle: `not raw_query`.)"""
    granted = stack.grant(100).json()["upload"]
    evil_key = "uploads/" + "e" * 32
    fields = {**granted["fields"], "key": evil_key, "Content-Type": "text/html"}
    fields["policy"] = base64.b64encode(
        b'{"expiration":"2000-01-01T00:00:00Z","conditions":[]}'
    ).decode()
    data = b"<html>" + b"x" * (2 * 1024 * 1024)
    body, ctype = _multipart(fields, data, "text/html")
    posted = _raw_post(granted["url"] + "?x=1", body, ctype)
    assert evil_key not in _keys(stack), (posted.status, posted.body[:300])


def test_FAILS_an_unsigned_put_through_s3_writes_any_object(stack: Stack) -> None:
    """/_s3 forwards every non-POST request to the emulator unchanged and the emulator
    checks no signature: any local process (no credentials at all) can PUT/DELETE/GET
    objects in the uploads bucket, bypassing the presigned policy; real S3 refuses an
    anonymous PUT to a private bucket with 403. (s3_proxy.py _forward.)"""
    base = stack.serve.url.rstrip("/")
    key = "uploads/" + "d" * 32
    put = http(f"{base}/_s3/{stack.bucket()}/{key}", "PUT", b"<html>" * 10, {})
    assert put.status == 403, (put.status, put.body[:300])


def test_policy_tampering_is_refused(stack: Stack) -> None:
    granted = stack.grant(1000).json()["upload"]
    url, fields = granted["url"], granted["fields"]
    photo = _jpeg(seed=11)
    cases: dict[str, tuple[dict[str, str], bytes, str]] = {
        "other key": ({**fields, "key": "uploads/" + "1" * 32}, photo, "image/jpeg"),
        "key case": ({**fields, "key": fields["key"].upper()}, photo, "image/jpeg"),
        "type case": ({**fields, "Content-Type": "IMAGE/JPEG"}, photo, "image/jpeg"),
        "type params": ({**fields, "Content-Type": "image/jpeg; x=1"}, photo, "image/jpeg"),
        "extra field": ({**fields, "acl": "public-read"}, photo, "image/jpeg"),
        "extra meta": ({**fields, "x-amz-meta-a": "1"}, photo, "image/jpeg"),
        "sse": ({**fields, "x-amz-server-side-encryption": "AES256"}, photo, "image/jpeg"),
        "no signature": (
            {k: v for k, v in fields.items() if k != "x-amz-signature"},
            photo,
            "image/jpeg",
        ),
        "bad signature": ({**fields, "x-amz-signature": "0" * 64}, photo, "image/jpeg"),
        "policy re-encoded": (
            {
                **fields,
                "policy": base64.b64encode(
                    json.dumps(
                        json.loads(base64.b64decode(fields["policy"])), separators=(",", ":")
                    ).encode()
                ).decode(),
            },
            photo,
            "image/jpeg",
        ),
        "empty file": (fields, b"", "image/jpeg"),
        "redirect": ({**fields, "success_action_redirect": "http://evil/"}, photo, "image/jpeg"),
    }
    for name, (form, data, ctype) in cases.items():
        posted = _post_form(url, form, data, ctype)
        assert posted.status in (400, 403), (name, posted.status, posted.body[:300])
    assert granted["key"] not in _keys(stack)
    # Another grant's signature on this policy.
    other = stack.grant(1000).json()["upload"]
    swapped = {**fields, "x-amz-signature": other["fields"]["x-amz-signature"]}
    assert _post_form(url, swapped, photo, "image/jpeg").status == 403
    # Duplicate key fields: the first one is checked; is the first one stored?
    body, ctype = _multipart(fields, photo, "image/jpeg")
    dup_key = "uploads/" + "2" * 32
    extra = body.replace(
        b'Content-Disposition: form-data; name="policy"',
        b'Content-Disposition: form-data; name="key"\r\n\r\n'
        + dup_key.encode()
        + b"\r\n--"
        + ctype.split("boundary=")[1].encode()
        + b'\r\nContent-Disposition: form-data; name="policy"',
        1,
    )
    posted = _raw_post(url, extra, ctype)
    assert dup_key not in _keys(stack), posted.status
    # Two files: only the first counts; a second, bigger one is not stored in its place.
    body, ctype = _multipart(fields, photo, "image/jpeg")
    boundary = ctype.split("boundary=")[1]
    second = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + b"Z" * 3000
        + f"\r\n--{boundary}--\r\n".encode()
    )
    two = body.replace(f"--{boundary}--\r\n".encode(), second)
    posted = _raw_post(url, two, ctype)
    assert posted.status in (200, 201, 204), posted.body
    got = stack.s3().get_object(Bucket=stack.bucket(), Key=granted["key"])["Body"].read()
    assert got == photo


# --- jobs ---------------------------------------------------------------------------------


def _analyze_workers(stack: Stack) -> list[int]:
    return [p for p in stack.serve.group_pids() if p != stack.serve.pid]


def test_a_job_whose_worker_dies_ends_failed_with_worker_failed_not_running(
    stack: Stack,
) -> None:
    """The worker process running the job dies (OOM, kill) after the job went running.
    serve retries the event ([jobs] retries = 1) about 1 s later; the dead attempt's
    deadline (its start + the function's 30 s timeout) has not passed, so the retry
    cannot tell it from a live one: it does not run the job again but raises, serve
    sends the event to the dead-letter queue, and its consumer fails the job with
    worker_failed. So the job ends `failed` within seconds, never stuck `running`
    (lens/jobs/worker.py run, _refused; lens/jobs/store.py start)."""
    stack.gemini.reply_delay(60.0)
    created = stack.call("POST", "/jobs", {"image": base64.b64encode(_jpeg(seed=21)).decode()})
    assert created.status == 202, created.body
    job_id = created.json()["job_id"]

    def running() -> bool:
        return stack.call("GET", f"/jobs/{job_id}").json()["status"] == "running"

    wait_until(running, timeout=60, what="job running")
    wait_until(lambda: len(stack.gemini.requests) >= 1, timeout=30, what="gemini asked")
    before = set(_analyze_workers(stack))
    for pid in before:  # the workers serve started for the functions
        os.kill(pid, signal.SIGKILL)
    stack.gemini.reset()
    deadline = time.monotonic() + 45
    status = "running"
    seen: list[Any] = []
    body: Any = None
    while time.monotonic() < deadline and status == "running":
        got = stack.call("GET", f"/jobs/{job_id}")
        seen.append((got.status, got.body[:100]))
        if got.status == 200:
            body = got.json()
            status = body["status"]
        time.sleep(0.5)
    assert status == "failed", (status, seen[:3], seen[-3:])
    assert body["error"]["code"] == "worker_failed", body
    assert len(stack.gemini.requests) == 0  # the retry did not run the analysis again


def test_a_job_is_readable_by_any_valid_key_and_jobs_are_not_caller_scoped(stack: Stack) -> None:
    """Documenting: GET /jobs/{id} does not check who created the job (the id, 128 random
    bits, is the capability)."""
    created = stack.call("POST", "/jobs", {"image": base64.b64encode(_jpeg(seed=22)).decode()})
    job_id = created.json()["job_id"]
    got = stack.call("GET", f"/jobs/{job_id.upper()}")
    assert got.status == 404
    got = stack.call("GET", f"/jobs/{job_id}", headers={"x-api-key": ""})
    assert got.status in (401, 403), got.status


def test_webproxy_jobs_validates_ids_and_passes_idempotency(stack: Stack) -> None:
    base = stack.serve.url.rstrip("/")
    for bad in ("..%2F..%2Fhealth", "%2e%2e", "0" * 31, "0" * 33, "G" * 32):
        got = http(f"{base}/api/jobs/{bad}")
        assert got.status == 404, (bad, got.status, got.body[:200])
    body = json.dumps({"image": base64.b64encode(_jpeg(seed=23)).decode()}).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    first = http(f"{base}/api/jobs", "POST", body, headers)
    again = http(f"{base}/api/jobs", "POST", body, headers)
    assert first.status == again.status == 202, (first.body, again.body)
    assert first.json()["job_id"] == again.json()["job_id"]
    assert stack.serve.api_key and stack.serve.api_key.encode() not in first.body
    up = http(
        f"{base}/api/uploads",
        "POST",
        json.dumps({"content_type": "image/jpeg", "bytes": 100}).encode(),
        {"Content-Type": "application/json"},
    )
    assert up.status == 201, up.body
    assert stack.serve.api_key.encode() not in up.body
    assert urllib.parse.urlsplit(up.json()["upload"]["url"]).path.startswith("/_s3/")


def test_FAILS_serve_s_lambda_endpoint_runs_the_function_without_the_api_key(
    stack: Stack,
) -> None:
    """serve's /_lambda Invoke endpoint takes any event with no credentials and no Origin
    check: a forged API Gateway event for POST /analyze runs the function (which trusts
    API Gateway to have checked the key) and spends the developer's Gemini key. A
    text/plain POST is a CORS "simple request", so any web page the developer visits can
    fire it at 127.0.0.1:<port> (no preflight). (tooling/scarab/serve/lambda_invoke.py
    LambdaInvoke.handle: no SigV4/credential or Origin check.)"""
    from tests.function.events import b64, rest_event

    denied = stack.call("POST", "/analyze", {"image": b64(_jpeg(seed=31))}, {"x-api-key": ""})
    assert denied.status in (401, 403)
    event = rest_event(
        path="/analyze",
        body={"image": b64(_jpeg(seed=31)), "speed": "fast"},
        headers={"Content-Type": "application/json"},
    )
    base = stack.serve.url.rstrip("/")
    got = http(
        f"{base}/_lambda/2015-03-31/functions/scarab-dev-analyze/invocations",
        "POST",
        json.dumps(event).encode(),
        {"Content-Type": "text/plain", "Origin": "http://evil.example"},
    )
    assert b"picture_location" not in got.body, (got.status, got.body[:300])


def test_zz_no_secret_in_serve_s_output_or_the_tables(stack: Stack) -> None:
    """Last in the module: after uploads, jobs, an upstream failure and a dead worker,
    neither the Gemini key nor the API key is in serve's output or in any job item."""
    from tests.serve.conftest import TEST_GEMINI_KEY

    stack.gemini.reply_error(500)
    stack.gemini.reply_error(500)
    created = stack.call("POST", "/jobs", {"image": base64.b64encode(_jpeg(seed=41)).decode()})
    stack.wait_job(created.json()["job_id"])
    # The banner shows the API key to the developer on purpose; what follows must not.
    output = stack.serve.output().split("Press Ctrl-C to stop.", 1)[-1]
    logs = "".join(
        p.read_text(errors="replace") for p in (stack.project / ".scarab").rglob("*.log")
    )
    assert TEST_GEMINI_KEY not in output + logs
    assert stack.serve.api_key and stack.serve.api_key not in output + logs
    import boto3

    from tests.serve.support import emulator_url

    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=emulator_url(stack.project),
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    items = json.dumps(dynamodb.scan(TableName="scarab-dev-jobs")["Items"])
    assert TEST_GEMINI_KEY not in items and stack.serve.api_key not in items
