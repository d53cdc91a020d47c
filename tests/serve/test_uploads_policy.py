"""Units of scarab.serve.post_policy: S3's rules for a browser POST upload, checked on
forms boto3's generate_presigned_post signs (the same call the function makes)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from scarab.serve.post_policy import PostRefused, check_post, parse_form
from urllib3.filepost import encode_multipart_formdata

SECRETS = {"testing": "testing"}
BUCKET = "scarab-dev-uploads-123456789012-us-east-1"
KEY = "uploads/" + "ab" * 16
MAX = 1000


def presign(signature_version: str = "s3v4", **overrides: Any) -> dict[str, Any]:
    """What lens' POST /uploads hands out: key and Content-Type pinned, a size range."""
    session = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        region_name="us-east-1",
    )
    s3 = session.client(
        "s3",
        endpoint_url="http://127.0.0.1:3000/_s3",
        config=Config(signature_version=signature_version, s3={"addressing_style": "path"}),
    )
    args: dict[str, Any] = {
        "Bucket": BUCKET,
        "Key": KEY,
        "Fields": {"Content-Type": "image/jpeg"},
        "Conditions": [{"Content-Type": "image/jpeg"}, ["content-length-range", 1, MAX]],
        "ExpiresIn": 300,
    }
    args.update(overrides)
    return dict(s3.generate_presigned_post(**args))


def form(
    post: dict[str, Any],
    data: bytes = b"\xff\xd8\xff" + b"x" * 100,
    *,
    change: dict[str, str] | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> tuple[str, bytes]:
    fields: list[Any] = [(k, (change or {}).get(k, v)) for k, v in post["fields"].items()]
    fields += extra or []
    fields.append(("file", ("photo.jpg", data, "image/jpeg")))
    body, content_type = encode_multipart_formdata(fields)
    return content_type, body


def refused(content_type: str, body: bytes, **kwargs: Any) -> PostRefused:
    with pytest.raises(PostRefused) as info:
        check_post(BUCKET, content_type, body, SECRETS, **kwargs)
    return info.value


def test_the_url_is_serves_path_style_s3_endpoint() -> None:
    assert presign()["url"] == f"http://127.0.0.1:3000/_s3/{BUCKET}"


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_a_valid_form_is_accepted(version: str) -> None:
    post = presign(version)
    accepted = check_post(BUCKET, *form(post), SECRETS)
    assert accepted.key == KEY
    assert accepted.fields["content-type"] == "image/jpeg"
    assert accepted.body.startswith(b"\xff\xd8\xff") and len(accepted.body) == 103
    assert accepted.access_key == "testing"


def test_fields_after_the_file_are_ignored() -> None:
    post = presign()
    fields: list[Any] = list(post["fields"].items())
    fields += [("file", ("a.jpg", b"abc", "image/jpeg")), ("uncovered", "after the file")]
    body, content_type = encode_multipart_formdata(fields)
    parsed = parse_form(content_type, body)
    assert parsed.file == b"abc" and parsed.get("uncovered") is None
    assert check_post(BUCKET, content_type, body, SECRETS).key == KEY


def test_oversize_is_entity_too_large() -> None:
    error = refused(*form(presign(), b"x" * (MAX + 1)))
    assert (error.status, error.code) == (400, "EntityTooLarge")
    assert b"<MaxSizeAllowed>1000</MaxSizeAllowed>" in error.xml()
    assert b"<ProposedSize>1001</ProposedSize>" in error.xml()


def test_empty_file_is_entity_too_small() -> None:
    error = refused(*form(presign(), b""))
    assert (error.status, error.code) == (400, "EntityTooSmall")


def test_the_largest_allowed_size_passes() -> None:
    assert len(check_post(BUCKET, *form(presign(), b"x" * MAX), SECRETS).body) == MAX


def test_wrong_content_type_is_access_denied() -> None:
    error = refused(*form(presign(), change={"Content-Type": "text/html"}))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert error.message.startswith("Invalid according to Policy: Policy Condition failed:")
    assert "Content-Type" in error.message
    xml = error.xml()
    assert xml.startswith(b"<?xml") and b"<Code>AccessDenied</Code>" in xml
    assert b"<Message>Invalid according to Policy: " in xml


def test_another_key_is_access_denied() -> None:
    error = refused(*form(presign(), change={"key": "uploads/" + "cd" * 16}))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert '"key"' in error.message


def test_another_bucket_is_access_denied() -> None:
    content_type, body = form(presign())
    with pytest.raises(PostRefused) as info:
        check_post("someone-elses-bucket", content_type, body, SECRETS)
    assert (info.value.status, info.value.code) == (403, "AccessDenied")


def test_expired_policy_is_access_denied() -> None:
    content_type, body = form(presign())
    later = datetime.now(UTC) + timedelta(seconds=301)
    error = refused(content_type, body, now=lambda: later)
    assert (error.status, error.code) == (403, "AccessDenied")
    assert error.message == "Invalid according to Policy: Policy expired."
    # Just before the expiry it still passes.
    sooner = datetime.now(UTC) + timedelta(seconds=290)
    assert check_post(BUCKET, content_type, body, SECRETS, now=lambda: sooner).key == KEY


def test_tampered_policy_is_signature_does_not_match() -> None:
    post = presign()
    document = json.loads(base64.b64decode(post["fields"]["policy"]))
    document["conditions"] = [c for c in document["conditions"] if not isinstance(c, list)]
    document["conditions"].append(["content-length-range", 1, 10**9])
    tampered = base64.b64encode(json.dumps(document).encode()).decode()
    error = refused(*form(post, b"x" * (MAX + 1), change={"policy": tampered}))
    assert (error.status, error.code) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("field", ["x-amz-signature", "x-amz-credential"])
def test_tampered_signature_or_credential_is_refused(field: str) -> None:
    post = presign()
    value = post["fields"][field]
    if field == "x-amz-signature":
        value = ("0" if value[0] != "0" else "1") + value[1:]
    else:
        value = value.replace("testing/", "someone/", 1)
    error = refused(*form(post, change={field: value}))
    assert error.status == 403
    assert error.code == (
        "SignatureDoesNotMatch" if field == "x-amz-signature" else "InvalidAccessKeyId"
    )


def test_wrong_secret_is_signature_does_not_match() -> None:
    content_type, body = form(presign())
    with pytest.raises(PostRefused) as info:
        check_post(BUCKET, content_type, body, {"testing": "not-the-secret"})
    assert info.value.code == "SignatureDoesNotMatch"


def test_sigv2_tampered_signature_is_refused() -> None:
    post = presign("s3")
    assert "AWSAccessKeyId" in post["fields"] and "signature" in post["fields"]
    error = refused(*form(post, change={"signature": "AAAA" + post["fields"]["signature"][4:]}))
    assert (error.status, error.code) == (403, "SignatureDoesNotMatch")


def test_an_uncovered_field_is_access_denied_but_x_ignore_passes() -> None:
    post = presign()
    error = refused(*form(post, extra=[("x-amz-meta-owner", "mallory")]))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert error.message == "Invalid according to Policy: Extra input fields: x-amz-meta-owner"
    assert check_post(BUCKET, *form(post, extra=[("x-ignore-note", "ok")]), SECRETS).key == KEY


def test_conditions_on_missing_fields_and_starts_with() -> None:
    post = presign(
        Key="uploads/${filename}",
        Fields={"Content-Type": "image/png"},
        Conditions=[
            ["starts-with", "$key", "uploads/"],
            ["starts-with", "$Content-Type", "image/"],
        ],
    )
    accepted = check_post(BUCKET, *form(post), SECRETS)
    assert accepted.key == "uploads/photo.jpg"
    outside = refused(*form(post, change={"key": "other/x"}))
    assert outside.code == "AccessDenied" and "starts-with" in outside.message
    # A condition on a field the form lacks fails (the field counts as empty).
    post = presign(Conditions=[{"Content-Type": "image/jpeg"}, {"x-amz-meta-tag": "v"}])
    assert refused(*form(post)).code == "AccessDenied"


def test_not_multipart_no_file_no_policy() -> None:
    assert refused("application/x-www-form-urlencoded", b"key=a").status == 412
    post = presign()
    body, content_type = encode_multipart_formdata(list(post["fields"].items()))
    assert refused(content_type, body).code == "InvalidArgument"
    fields = [(k, v) for k, v in post["fields"].items() if k != "policy"]
    fields.append(("file", ("a", b"x", "image/jpeg")))
    body, content_type = encode_multipart_formdata(fields)
    assert refused(content_type, body).code == "AccessDenied"


def test_the_policy_document_boto3_signs_has_what_s3_needs() -> None:
    document = json.loads(base64.b64decode(presign()["fields"]["policy"]))
    expiration = datetime.fromisoformat(document["expiration"].replace("Z", "+00:00"))
    assert timedelta(seconds=290) < expiration - datetime.now(UTC) <= timedelta(seconds=300)
    assert {"bucket": BUCKET} in document["conditions"]
    assert {"key": KEY} in document["conditions"]
    assert ["content-length-range", 1, MAX] in document["conditions"]
