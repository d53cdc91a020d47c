"""S3 through a running `scarab serve` at /_s3: the presigned POST policy enforced by
serve (the emulator alone stores anything), every other S3 call forwarded to the
emulator, and CORS from the bucket's own configuration."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from urllib3.filepost import encode_multipart_formdata

from tests.serve.support import emulator_url, http, make_project
from tests.support.serve_process import ServeProcess, start_serve

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

BUCKET = "scarab-dev-uploads-123456789012-us-east-1"
PAGE = "http://page.example:8080"
MAX = 4096
JPEG = b"\xff\xd8\xff\xe0" + b"j" * 500


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    project = make_project(tmp_path_factory.mktemp("uploads-proxy"), web=False)
    env = {"GOOGLE_API_KEY": None, "GEMINI_API_KEY": None, "AWS_ENDPOINT_URL": None}
    proc = start_serve(project, env=env)
    try:
        # The bucket as deploy makes it: private, CORS for the page's origin (POST only).
        s3 = moto_s3(proc.project_dir)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_cors(
            Bucket=BUCKET,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedOrigins": [PAGE],
                        "AllowedMethods": ["POST"],
                        "AllowedHeaders": ["*"],
                        "ExposeHeaders": ["ETag", "Location"],
                        "MaxAgeSeconds": 300,
                    }
                ]
            },
        )
        yield proc
    finally:
        proc.stop()
        print(proc.output())


def _session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        region_name="us-east-1",
    )


def moto_s3(project: Path) -> Any:
    """S3 on the emulator itself, behind serve's back (what is really stored)."""
    return _session().client("s3", endpoint_url=emulator_url(project))


def serve_s3(proc: ServeProcess) -> Any:
    """S3 the way the function's client sees it: serve's /_s3, path-style, SigV4."""
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    return _session().client("s3", endpoint_url=f"{proc.url}/_s3", config=config)


def presign(proc: ServeProcess, key: str, expires: int = 300) -> dict[str, Any]:
    """What POST /uploads hands out (the conditions of the issue's contract)."""
    return dict(
        serve_s3(proc).generate_presigned_post(
            Bucket=BUCKET,
            Key=key,
            Fields={"Content-Type": "image/jpeg"},
            Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 1, MAX]],
            ExpiresIn=expires,
        )
    )


def post_form(
    post: dict[str, Any],
    data: bytes = JPEG,
    change: dict[str, str] | None = None,
    origin: str | None = None,
) -> Any:
    """The browser's POST: the fields in order, then the file."""
    fields: list[Any] = [(k, (change or {}).get(k, v)) for k, v in post["fields"].items()]
    fields.append(("file", ("photo.jpg", data, "image/jpeg")))
    body, content_type = encode_multipart_formdata(fields)
    headers = {"Content-Type": content_type, **({"Origin": origin} if origin else {})}
    return http(post["url"], "POST", body, headers)


def stored(proc: ServeProcess, key: str) -> dict[str, Any] | None:
    try:
        return dict(moto_s3(proc.project_dir).head_object(Bucket=BUCKET, Key=key))
    except ClientError:
        return None


def test_presigned_post_urls_point_at_serve(serve: ServeProcess) -> None:
    assert presign(serve, "uploads/" + "0" * 32)["url"] == f"{serve.url}/_s3/{BUCKET}"


def test_a_valid_upload_is_stored_in_the_emulator(serve: ServeProcess) -> None:
    key = "uploads/" + "a" * 32
    resp = post_form(presign(serve, key), origin=PAGE)
    assert resp.status == 204, resp.body
    assert resp.headers["access-control-allow-origin"] == PAGE
    assert resp.headers["location"].endswith(f"/_s3/{BUCKET}/uploads/{'a' * 32}")
    head = stored(serve, key)
    assert head is not None
    assert head["ContentType"] == "image/jpeg" and head["ContentLength"] == len(JPEG)
    body = moto_s3(serve.project_dir).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body == JPEG


def test_success_action_status_201_answers_post_response_xml(serve: ServeProcess) -> None:
    key = "uploads/" + "b" * 32
    post = dict(
        serve_s3(serve).generate_presigned_post(
            Bucket=BUCKET,
            Key=key,
            Fields={"success_action_status": "201"},
            Conditions=[{"success_action_status": "201"}],
            ExpiresIn=60,
        )
    )
    resp = post_form(post)
    assert resp.status == 201, resp.body
    assert f"<Key>{key}</Key>".encode() in resp.body
    assert stored(serve, key) is not None


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("oversize", 400, "EntityTooLarge"),
        ("wrong_type", 403, "AccessDenied"),
        ("other_key", 403, "AccessDenied"),
        ("expired", 403, "AccessDenied"),
        ("bad_signature", 403, "SignatureDoesNotMatch"),
    ],
)
def test_a_form_s3_refuses_is_refused_and_nothing_is_stored(
    serve: ServeProcess, case: str, status: int, code: str
) -> None:
    key = f"uploads/{case.replace('_', '')[:8]:0<32}"
    post = presign(serve, key, expires=-5 if case == "expired" else 300)
    data, change = JPEG, {}
    if case == "oversize":
        data = b"x" * (MAX + 1)
    elif case == "wrong_type":
        change = {"Content-Type": "text/html"}
    elif case == "other_key":
        change = {"key": "uploads/" + "f" * 32}
    elif case == "bad_signature":
        change = {"x-amz-signature": "0" * 64}
    resp = post_form(post, data, change, origin=PAGE)
    assert resp.status == status, resp.body
    assert resp.headers["content-type"] == "application/xml"
    assert f"<Code>{code}</Code>".encode() in resp.body
    if code == "AccessDenied":
        assert b"<Message>Invalid according to Policy: " in resp.body
    # The page can read why (the bucket's CORS applies to refusals too).
    assert resp.headers.get("access-control-allow-origin") == PAGE
    assert stored(serve, key) is None
    assert stored(serve, "uploads/" + "f" * 32) is None


def test_cors_preflight_follows_the_bucket_configuration(serve: ServeProcess) -> None:
    url = f"{serve.url}/_s3/{BUCKET}"
    allowed = http(
        url,
        "OPTIONS",
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert allowed.status == 200, allowed.body
    assert allowed.headers["access-control-allow-origin"] == PAGE
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-allow-headers"] == "content-type"
    assert allowed.headers["access-control-max-age"] == "300"
    for origin, method in (("http://evil.example", "POST"), (PAGE, "PUT")):
        denied = http(
            url, "OPTIONS", headers={"Origin": origin, "Access-Control-Request-Method": method}
        )
        assert denied.status == 403, (origin, method)
        assert b"<Code>AccessForbidden</Code>" in denied.body
        assert "access-control-allow-origin" not in denied.headers
    # moto's blanket `Access-Control-Allow-Origin: *` does not leak through.
    other = http(f"{url}?list-type=2", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_other_s3_calls_are_forwarded_to_the_emulator(serve: ServeProcess) -> None:
    s3 = serve_s3(serve)
    key = "uploads/" + "c" * 32
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"hello", ContentType="image/png")
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == 5 and head["ContentType"] == "image/png"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"hello"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="uploads/")["Contents"]]
    assert key in keys
    # A presigned GET (query-string auth) works too.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key})
    assert url.startswith(f"{serve.url}/_s3/{BUCKET}/")
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.read() == b"hello"
    s3.delete_object(Bucket=BUCKET, Key=key)
    assert stored(serve, key) is None
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket=BUCKET, Key=key)
    assert info.value.response["Error"]["Code"] == "404"
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=BUCKET, Key=key)
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
