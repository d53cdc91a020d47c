"""Issue 16 end to end through `scarab serve`: the real function, the emulator's S3,
DynamoDB and SQS, serve's presigned-POST check (/_s3) and its async invocations (/_lambda).

One serve for the module, with `[uploads] max_mb = 1` (so the size limit is cheap to
cross) and `[jobs] retries = 1`, Gemini asked once per invocation (SCARAB_MAX_ATTEMPTS=1)
so a failing upstream is counted exactly.
"""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.serve.conftest import serve_env
from tests.serve.support import Response, emulator_url, http, make_project
from tests.support.gemini_server import GeminiServer
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess

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


def _jpeg(size: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (seed % 256, 90, 60)).save(buf, "JPEG")
    return buf.getvalue()


def _multipart(fields: dict[str, str], file: bytes, content_type: str) -> tuple[bytes, str]:
    """The form a browser posts to a presigned POST: the fields in order, then the file."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    out.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
    )
    out.write(file + f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def _post_form(url: str, fields: dict[str, str], file: bytes, content_type: str) -> Response:
    body, ctype = _multipart(fields, file, content_type)
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            items = [(k.lower(), v) for k, v in resp.headers.items()]
            return Response(resp.status, dict(items), resp.read(), items)
    except urllib.error.HTTPError as err:
        items = [(k.lower(), v) for k, v in err.headers.items()]
        return Response(err.code, dict(items), err.read(), items)


class Stack:
    def __init__(self, serve: ServeProcess, project: Path, gemini: GeminiServer) -> None:
        self.serve, self.project, self.gemini = serve, project, gemini

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"x-api-key": self.serve.api_key or "", "Content-Type": "application/json"}
        all_headers.update(headers or {})
        return http(f"{self.serve.api_url}{path}", method, data, all_headers)

    def grant(self, nbytes: int, content_type: str = "image/jpeg") -> Response:
        return self.call("POST", "/uploads", {"content_type": content_type, "bytes": nbytes})

    def upload(self, photo: bytes, content_type: str = "image/jpeg") -> str:
        granted = self.grant(len(photo), content_type)
        assert granted.status == 201, granted.body
        upload = granted.json()["upload"]
        posted = _post_form(upload["url"], upload["fields"], photo, content_type)
        assert posted.status in (200, 201, 204), posted.body
        return str(upload["key"])

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=emulator_url(self.project),
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}),
        )

    def sqs(self) -> Any:
        return boto3.client(
            "sqs",
            endpoint_url=emulator_url(self.project),
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def bucket(self) -> str:
        names = [b["Name"] for b in self.s3().list_buckets()["Buckets"]]
        (bucket,) = [n for n in names if "-uploads-" in n]
        return bucket

    def wait_job(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        seen: list[dict[str, Any]] = []

        def done() -> bool:
            got = self.call("GET", f"/jobs/{job_id}")
            assert got.status == 200, got.body
            seen.append(got.json())
            return seen[-1]["status"] in ("succeeded", "failed")

        wait_until(done, timeout=timeout, what=f"job {job_id} finishing")
        return seen[-1]


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, gemini_session_server: GeminiServer
) -> Iterator[Stack]:
    from tests.support.serve_process import start_serve

    project = make_project(tmp_path_factory.mktemp("jobs-flow"), TOML)
    proc = start_serve(project, env=serve_env(gemini_session_server))
    try:
        yield Stack(proc, project, gemini_session_server)
    finally:
        proc.stop()
        print(proc.output())


@pytest.fixture(autouse=True)
def _fresh_gemini(stack: Stack) -> None:
    stack.gemini.reset()


def test_upload_then_analyze_answers_and_deletes_the_object(stack: Stack) -> None:
    photo = _jpeg(seed=1)
    key = stack.upload(photo)
    s3 = stack.s3()
    assert s3.get_object(Bucket=stack.bucket(), Key=key)["Body"].read() == photo
    answered = stack.call("POST", "/analyze", {"upload": key, "speed": "fast"})
    assert answered.status == 200, answered.body
    assert answered.json()["analysis"]["picture_location"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.bucket()).get("Contents", [])]
    assert key not in keys
    again = stack.call("POST", "/analyze", {"upload": key, "speed": "fast"})
    assert again.status == 404 and again.json()["error"]["code"] == "upload_not_found"


def test_the_size_limit_is_enforced_by_the_grant_and_by_serve_s_s3(stack: Stack) -> None:
    over = 1024 * 1024 + 1
    refused = stack.grant(over)
    assert refused.status == 413 and refused.json()["error"]["code"] == "upload_too_large"
    # A grant for a small file, then a large one posted with it: S3's EntityTooLarge.
    granted = stack.grant(1000).json()["upload"]
    assert granted["max_bytes"] == 1024 * 1024
    big = _jpeg(seed=2) + b"\0" * over
    posted = _post_form(granted["url"], granted["fields"], big, "image/jpeg")
    assert posted.status == 400 and b"EntityTooLarge" in posted.body
    keys = [o["Key"] for o in stack.s3().list_objects_v2(Bucket=stack.bucket()).get("Contents", [])]
    assert granted["key"] not in keys
    # The policy pins the Content-Type field (S3 stores the object with that type).
    retyped = {**granted["fields"], "Content-Type": "image/png"}
    wrong_type = _post_form(granted["url"], retyped, _jpeg(seed=3), "image/png")
    assert wrong_type.status == 403 and b"AccessDenied" in wrong_type.body


def test_a_job_goes_from_queued_to_succeeded_with_the_analysis(stack: Stack) -> None:
    created = stack.call("POST", "/jobs", {"image": base64.b64encode(_jpeg(seed=4)).decode()})
    assert created.status == 202, created.body
    job_id = created.json()["job_id"]
    assert created.json()["status_url"] == f"/jobs/{job_id}"
    job = stack.wait_job(job_id)
    assert job["status"] == "succeeded", job
    assert job["result"]["analysis"]["picture_location"]
    assert job["timings_ms"]["total"] >= job["timings_ms"]["run"] >= 0
    assert job["created_at"] <= job["updated_at"]


def test_a_job_whose_upstream_fails_is_retried_then_failed_from_the_dead_letter_queue(
    stack: Stack,
) -> None:
    for _ in range(4):
        stack.gemini.reply_error(500)
    key = stack.upload(_jpeg(seed=5))
    created = stack.call("POST", "/jobs", {"upload": key, "speed": "fast"})
    assert created.status == 202, created.body
    job = stack.wait_job(created.json()["job_id"])
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "upstream_error", job
    # [jobs] retries = 1: the first attempt and one retry, each asking Gemini once.
    assert len(stack.gemini.requests) == 2
    queue_url = stack.sqs().get_queue_url(QueueName="scarab-dev-jobs-dlq")["QueueUrl"]
    attrs = stack.sqs().get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"  # consumed by the mapping
    # The upload is kept after a 5xx (a retry could use it); the lifecycle rule removes it.


def test_an_idempotency_key_returns_the_same_job_and_another_body_is_409(stack: Stack) -> None:
    body = {"image": base64.b64encode(_jpeg(seed=6)).decode(), "speed": "fast"}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = stack.call("POST", "/jobs", body, headers)
    assert first.status == 202, first.body
    stack.wait_job(first.json()["job_id"])
    again = stack.call("POST", "/jobs", body, headers)
    assert again.status == 202 and again.json()["job_id"] == first.json()["job_id"]
    other = stack.call("POST", "/jobs", {**body, "speed": "regular"}, headers)
    assert other.status == 409 and other.json()["error"]["code"] == "idempotency_conflict"


def test_unknown_jobs_are_404_and_the_page_routes_reach_them(stack: Stack) -> None:
    unknown = stack.call("GET", "/jobs/" + "0" * 32)
    assert unknown.status == 404 and unknown.json()["error"]["code"] == "job_not_found"
    page = http(f"{stack.serve.url}/api/jobs/not-an-id")
    assert page.status == 404 and page.json()["error"]["code"] == "job_not_found"
    created = http(
        f"{stack.serve.url}/api/jobs",
        "POST",
        json.dumps({"image": base64.b64encode(_jpeg(seed=7)).decode(), "speed": "fast"}).encode(),
        {"Content-Type": "application/json", "Idempotency-Key": "page-" + uuid.uuid4().hex},
    )
    assert created.status == 202, created.body
    job_id = created.json()["job_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        polled = http(f"{stack.serve.url}/api/jobs/{job_id}")
        assert polled.status == 200, polled.body
        if polled.json()["status"] == "succeeded":
            break
        time.sleep(0.1)
    assert polled.json()["status"] == "succeeded"
    assert b"x-api-key" not in polled.body
