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


def test_a_form_post_with_a_query_string_is_still_checked_against_its_policy(
    stack: Stack,
) -> None:
    """S3 takes a browser's multipart/form-data POST to the bucket as POST Object whatever
    the query: `?x=1` (or a subresource's name) does not send the form to the emulator
    unchecked. (Was: s3_proxy.py S3Proxy.handle checked a POST only without a query.)"""
    granted = stack.grant(100).json()["upload"]
    evil_key = "uploads/" + "e" * 32
    fields = {**granted["fields"], "key": evil_key, "Content-Type": "text/html"}
    fields["policy"] = base64.b64encode(
        b'{"expiration":"2000-01-01T00:00:00Z","conditions":[]}'
    ).decode()
    data = b"<html>" + b"x" * (200 * 1024)
    body, ctype = _multipart(fields, data, "text/html")
    for query in ("?x=1", "?delete", "?uploads"):
        posted = _raw_post(granted["url"] + query, body, ctype)
        assert posted.status == 403, (query, posted.status, posted.body[:300])
        assert b"<Code>SignatureDoesNotMatch</Code>" in posted.body, posted.body[:300]
    assert evil_key not in _keys(stack)
    # A form larger than any the stage signs ([uploads] max_mb = 1) is not even read:
    # EntityTooLarge before its (bad) signature is looked at.
    big, big_type = _multipart(fields, b"x" * (3 * 1024 * 1024), "text/html")
    posted = _raw_post(granted["url"] + "?x=1", big, big_type)
    assert posted.status == 400 and b"<Code>EntityTooLarge</Code>" in posted.body
    # The granted form itself, with a query on the URL, is checked and stored as usual.
    photo = _jpeg(seed=12)
    posted = _post_form(granted["url"] + "?x=1", granted["fields"], photo, "image/jpeg")
    assert posted.status in (200, 201, 204), posted.body[:300]
    assert stack.s3().get_object(Bucket=stack.bucket(), Key=granted["key"])["Body"].read() == photo
    # A POST that is not a form is an API call: unsigned, it is refused.
    refused = _raw_post(f"{granted['url']}?delete", b"<Delete/>", "application/xml")
    assert refused.status == 403 and b"<Code>AccessDenied</Code>" in refused.body


def _serve_s3(stack: Stack, secret: str = "testing", key_id: str = "testing") -> Any:
    """S3 the way the function's client sees it (serve's /_s3), with these credentials."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=f"{stack.serve.url.rstrip('/')}/_s3",
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(
            signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}
        ),
    )


def test_unsigned_or_badly_signed_s3_requests_are_refused_and_change_nothing(
    stack: Stack,
) -> None:
    """The uploads bucket is private: through /_s3 an anonymous PUT, GET or DELETE is 403
    AccessDenied (S3's XML) and stores, reveals or deletes nothing; a signature made with
    another secret or an unknown key id is refused too; the emulator's credentials work.
    (Was: s3_proxy.py forwarded every non-POST request to the emulator unchecked.)"""
    from botocore.exceptions import ClientError

    base = stack.serve.url.rstrip("/")
    bucket = stack.bucket()
    key = "uploads/" + "d" * 32
    kept = "uploads/" + "f" * 32
    stack.s3().put_object(Bucket=bucket, Key=kept, Body=b"secret photo")
    for method, target, body in (
        ("PUT", key, b"<html>" * 10),
        ("PUT", key, b"x" * (3 * 1024 * 1024)),  # not held, and refused as anonymous
        ("GET", kept, None),
        ("DELETE", kept, None),
        ("GET", "", None),  # ListObjects
    ):
        got = http(f"{base}/_s3/{bucket}/{target}".rstrip("/"), method, body, {})
        assert got.status == 403, (method, target, got.status, got.body[:300])
        assert b"<Code>AccessDenied</Code>" in got.body, got.body[:300]
        assert b"secret photo" not in got.body
    # A presigned URL whose signature is altered, or that has expired, is no key either.
    signed = _serve_s3(stack)
    url = signed.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": kept})
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")[: len(url)]
    got = http(tampered)
    assert got.status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in got.body, got.body
    for client, code in (
        (_serve_s3(stack, secret="wrong"), "SignatureDoesNotMatch"),
        (_serve_s3(stack, key_id="AKIAOTHER"), "InvalidAccessKeyId"),
    ):
        with pytest.raises(ClientError) as info:
            client.put_object(Bucket=bucket, Key=key, Body=b"x")
        assert info.value.response["Error"]["Code"] == code
        with pytest.raises(ClientError) as info:
            client.delete_object(Bucket=bucket, Key=kept)
        assert info.value.response["Error"]["Code"] == code
    assert key not in _keys(stack) and kept in _keys(stack)
    # Signed by the emulator's credentials, as the function's calls are: all of S3.
    assert http(url).body == b"secret photo"
    signed.put_object(Bucket=bucket, Key=key, Body=b"mine", ContentType="image/png")
    assert signed.get_object(Bucket=bucket, Key=key)["Body"].read() == b"mine"
    signed.delete_object(Bucket=bucket, Key=key)
    signed.delete_object(Bucket=bucket, Key=kept)
    assert key not in _keys(stack) and kept not in _keys(stack)


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


def _signed_invoke(
    stack: Stack, payload: bytes, headers: dict[str, str], secret: str = "testing"
) -> tuple[str, bytes, dict[str, str]]:
    """An Invoke request signed as the function's SDK signs it (SigV4, service lambda)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = (
        f"{stack.serve.url.rstrip('/')}/_lambda/2015-03-31/functions/scarab-dev-analyze/invocations"
    )
    request = AWSRequest(method="POST", url=url, data=payload, headers=dict(headers))
    SigV4Auth(Credentials("testing", secret), "lambda", "us-east-1").add_auth(request)
    return url, payload, dict(request.headers.items())


def test_serve_s_lambda_endpoint_runs_only_signed_requests_from_no_browser(
    stack: Stack,
) -> None:
    """serve's /_lambda Invoke endpoint takes only requests signed by the emulator's
    credentials, and none with an Origin (a page the developer visits could otherwise
    fire a text/plain POST, no preflight, with a forged API Gateway event for POST
    /analyze and spend the developer's Gemini key). (Was: lambda_invoke.py
    LambdaInvoker.handle checked no credentials and no Origin.)"""
    from tests.function.events import b64, rest_event

    denied = stack.call("POST", "/analyze", {"image": b64(_jpeg(seed=31))}, {"x-api-key": ""})
    assert denied.status in (401, 403)
    event = rest_event(
        path="/analyze",
        body={"image": b64(_jpeg(seed=31)), "speed": "fast"},
        headers={"Content-Type": "application/json"},
    )
    payload = json.dumps(event).encode()
    base = stack.serve.url.rstrip("/")
    url = f"{base}/_lambda/2015-03-31/functions/scarab-dev-analyze/invocations"
    cases: dict[str, tuple[dict[str, str], str]] = {
        "browser, unsigned": (
            {"Content-Type": "text/plain", "Origin": "http://evil.example"},
            "AccessDeniedException",
        ),
        "unsigned": ({"Content-Type": "text/plain"}, "MissingAuthenticationTokenException"),
    }
    for name, (headers, code) in cases.items():
        got = http(url, "POST", payload, headers)
        assert got.status == 403, (name, got.status, got.body[:300])
        assert got.headers.get("x-amzn-errortype") == code, (name, got.headers)
        assert b"picture_location" not in got.body
    # Signed, but from a page; signed with another secret; signed, then the body swapped.
    _, _, browser = _signed_invoke(stack, payload, {"Origin": "http://evil.example"})
    _, _, forged = _signed_invoke(stack, payload, {}, secret="guess")
    _, _, swapped = _signed_invoke(stack, b"{}", {})
    for name, headers, code in (
        ("signed from a page", browser, "AccessDeniedException"),
        ("other secret", forged, "InvalidSignatureException"),
        ("body swapped", swapped, "InvalidSignatureException"),
    ):
        got = http(url, "POST", payload, headers)
        assert got.status == 403, (name, got.status, got.body[:300])
        assert got.headers.get("x-amzn-errortype") == code, (name, got.headers)
    assert stack.gemini.requests == [], "the function ran for a refused request"
    # The function's own SDK call (signed, no Origin) runs.
    _, _, signed = _signed_invoke(stack, b"{}", {"X-Amz-Invocation-Type": "DryRun"})
    got = http(url, "POST", b"{}", signed)
    assert got.status == 204, (got.status, got.body[:300])


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
