"""The shared test servers behave like the real peers they stand in for."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request

import boto3
import pytest
from google import genai
from google.genai import errors, types
from PIL import Image

from tests.support.gemini_server import SAMPLE_ANALYSIS, GeminiServer, decode_base64
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator


def _jpeg(exif_gps: bool = False) -> bytes:
    img = Image.new("RGB", (64, 48), (200, 150, 90))
    buf = io.BytesIO()
    exif = Image.Exif()
    if exif_gps:
        exif[0x8825] = {1: "N", 2: (30.0, 1.0, 2.0)}
    img.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def _client(gemini: GeminiServer) -> genai.Client:
    return genai.Client(
        api_key="k",
        http_options=types.HttpOptions(base_url=gemini.url, api_version="v1beta"),
    )


BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def test_moto_server_is_reset_between_tests(aws: MotoServer) -> None:
    iam = boto3.client("iam")
    assert iam.list_roles()["Roles"] == []
    iam.create_role(RoleName="r1", AssumeRolePolicyDocument="{}")
    aws.reset()
    assert iam.list_roles()["Roles"] == []
    # The default server skips AWS's managed policies (they cost every reset 0.7 s) ...
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_policy(PolicyArn=BASIC)


@pytest.mark.managed_policies
def test_the_marked_server_knows_the_managed_policies(aws: MotoServer) -> None:
    """... and a test marked `managed_policies` gets the server that has them."""
    iam = boto3.client("iam")
    assert iam.get_policy(PolicyArn=BASIC)["Policy"]["PolicyName"] == "AWSLambdaBasicExecutionRole"
    aws.reset()
    assert iam.get_policy(PolicyArn=BASIC)["Policy"]["PolicyName"] == "AWSLambdaBasicExecutionRole"


def test_sdk_success_and_recording(gemini: GeminiServer) -> None:
    jpeg = _jpeg(exif_gps=True)
    client = _client(gemini)  # keep a reference: a collected Client closes its transport
    resp = client.models.generate_content(
        model="m-1",
        contents=[types.Part.from_bytes(data=jpeg, mime_type="image/jpeg"), "describe"],
        config=types.GenerateContentConfig(temperature=0, response_mime_type="application/json"),
    )
    assert json.loads(resp.text or "") == SAMPLE_ANALYSIS
    assert resp.usage_metadata is not None and resp.usage_metadata.total_token_count == 1564
    [req] = gemini.requests
    assert req.model == "m-1" and req.api_version == "v1beta" and req.api_key == "k"
    assert req.images == [("image/jpeg", jpeg)]
    assert req.texts == ["describe"]
    assert req.generation_config["temperature"] == 0


@pytest.mark.parametrize("status", [429, 500, 503])
def test_sdk_sees_errors(gemini: GeminiServer, status: int) -> None:
    gemini.reply_error(status, retry_after="7")
    client = _client(gemini)
    with pytest.raises(errors.APIError) as info:
        client.models.generate_content(model="m", contents="x")
    assert info.value.code == status


def test_blocked_truncated_and_no_candidates(gemini: GeminiServer) -> None:
    client = _client(gemini)
    gemini.reply_blocked()
    blocked = client.models.generate_content(model="m", contents="x")
    assert blocked.candidates and blocked.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert blocked.text is None
    gemini.reply_truncated()
    truncated = client.models.generate_content(model="m", contents="x")
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.text or "")
    gemini.reply_no_candidates()
    empty = client.models.generate_content(model="m", contents="x")
    assert not empty.candidates


def test_accepts_snake_case_and_urlsafe_base64(gemini: GeminiServer) -> None:
    data = bytes(range(250, 256)) * 3  # encodes with '-' and '_' in URL-safe form
    body = {
        "contents": [
            {
                "parts": [
                    {
                        "inline_data": {
                            "mime_type": "image/png",
                            "data": base64.urlsafe_b64encode(data).decode(),
                        }
                    }
                ]
            }
        ],
        "generation_config": {"temperature": 0},
    }
    req = urllib.request.Request(
        f"{gemini.url}/v1beta/models/m:generateContent",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200
    assert gemini.requests[0].images == [("image/png", data)]
    assert decode_base64(base64.b64encode(data).decode()) == data


def test_error_reply_carries_retry_after(gemini: GeminiServer) -> None:
    gemini.reply_error(429, retry_after="12")
    req = urllib.request.Request(
        f"{gemini.url}/v1beta/models/m:generateContent", data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == 429
    assert info.value.headers["Retry-After"] == "12"
    assert json.loads(info.value.read())["error"]["status"] == "RESOURCE_EXHAUSTED"
