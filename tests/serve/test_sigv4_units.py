"""scarab.serve.sigv4 against requests botocore itself signs (S3 and Lambda, header and
presigned-query SigV4): what holds is accepted, any change is refused with its reason."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from scarab.serve import sigv4

HOST = "127.0.0.1:8123"


def _session(secret: str = "testing") -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key=secret,
        aws_session_token="testing",
        region_name="us-east-1",
    )


def _s3(secret: str = "testing") -> Any:
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    return _session(secret).client("s3", endpoint_url=f"http://{HOST}/_s3", config=config)


def _verify(method: str, url: str, headers: list[tuple[str, str]], body: bytes, **kw: Any) -> str:
    parts = urlsplit(url)
    return sigv4.verify(
        method=method,
        raw_path=parts.path,
        raw_query=parts.query,
        headers=[*headers, ("Host", parts.netloc)],
        body=body,
        service=kw.pop("service", "s3"),
        region="us-east-1",
        **kw,
    )


def _sent_put() -> tuple[str, list[tuple[str, str]], bytes]:
    """A PutObject exactly as botocore sends it (signed, not sent)."""
    request = AWSRequest(
        method="PUT",
        url=f"http://{HOST}/_s3/b/uploads/a%20b%2Bc",
        data=b"photo",
        headers={"Content-Type": "image/png"},
    )
    S3SigV4Auth(Credentials("testing", "testing", "testing"), "s3", "us-east-1").add_auth(request)
    return request.url, list(request.headers.items()), b"photo"


def test_a_signed_put_holds_and_any_change_is_refused() -> None:
    url, headers, body = _sent_put()
    assert _verify("PUT", url, headers, body) == "testing"
    cases = {
        "body": (url, headers, b"other", sigv4.CONTENT_SHA),
        "method": (url, headers, body, sigv4.MISMATCH),
        "key": (url.replace("a%20b", "a%20c"), headers, body, sigv4.MISMATCH),
        "type": (
            url,
            [(k, "text/html" if k.lower() == "content-type" else v) for k, v in headers],
            body,
            sigv4.MISMATCH,
        ),
        "token": (
            url,
            [(k, "other" if k.lower() == "x-amz-security-token" else v) for k, v in headers],
            body,
            sigv4.BAD_TOKEN,
        ),
        "unsigned": (
            url,
            [(k, v) for k, v in headers if k.lower() != "authorization"],
            body,
            sigv4.MISSING,
        ),
    }
    for name, (u, h, b, reason) in cases.items():
        with pytest.raises(sigv4.SignatureRefused) as info:
            _verify("DELETE" if name == "method" else "PUT", u, h, b)
        assert info.value.reason == reason, name
    with pytest.raises(sigv4.SignatureRefused) as info:
        _verify("PUT", url, headers, body, now=time.time() + 3600)
    assert info.value.reason == sigv4.SKEWED
    with pytest.raises(sigv4.SignatureRefused) as info:
        _verify("PUT", url, headers, body, secrets={"other": "testing"})
    assert info.value.reason == sigv4.UNKNOWN_KEY


def test_a_presigned_get_holds_until_it_expires() -> None:
    url = _s3().generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "uploads/x y"}, ExpiresIn=60
    )
    assert _verify("GET", url, [], b"") == "testing"
    with pytest.raises(sigv4.SignatureRefused) as info:
        _verify("GET", url, [], b"", now=time.time() + 120)
    assert info.value.reason == sigv4.EXPIRED
    with pytest.raises(sigv4.SignatureRefused) as info:
        _verify("GET", url.replace("x%20y", "z"), [], b"")
    assert info.value.reason == sigv4.MISMATCH
    wrong = _s3("guess").generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "uploads/x y"}
    )
    with pytest.raises(sigv4.SignatureRefused) as info:
        _verify("GET", wrong, [], b"")
    assert info.value.reason == sigv4.MISMATCH


def test_lambda_signs_its_arn_path_encoded_twice() -> None:
    arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af%3Alive"
    url = f"http://{HOST}/_lambda/2015-03-31/functions/{arn}/invocations"
    request = AWSRequest(method="POST", url=url, data=b'{"a":1}')
    SigV4Auth(Credentials("testing", "testing"), "lambda", "us-east-1").add_auth(request)
    headers = list(request.headers.items())
    assert _verify("POST", url, headers, b'{"a":1}', service="lambda") == "testing"
    with pytest.raises(sigv4.SignatureRefused) as info:
        _verify("POST", url, headers, b'{"a":2}', service="lambda")
    assert info.value.reason == sigv4.MISMATCH
    with pytest.raises(sigv4.SignatureRefused) as info:  # signed for another service
        _verify("POST", url, headers, b'{"a":1}', service="s3")
    assert info.value.reason == sigv4.MALFORMED
