"""POST /predict/{model_id} for an image model takes `"upload": key` in place of `image`,
through lens.handler.lambda_handler against the moto server's bucket: the same answer as
the inline image, the object deleted after it; 404 / 415 / 422 as /analyze answers."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from tests.jobs.stage import Stage, make_stage
from tests.predict.conftest import Call, cache_dir, call
from tests.predict.drawing import draw_digit
from tests.support.moto_server import MotoServer

__all__ = ["cache_dir", "call"]
pytestmark = pytest.mark.emulator
KEY = "uploads/" + "fedcba9876543210" * 2


def _png(digit: int) -> bytes:
    buffer = io.BytesIO()
    image: Image.Image = draw_digit(digit)
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def stage(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Stage:
    return make_stage(monkeypatch, table=False)


def test_a_digit_upload_is_predicted_like_the_inline_image_then_deleted(
    stage: Stage, call: Call
) -> None:
    image = _png(3)
    stage.s3.put_object(Bucket=stage.bucket, Key=KEY, Body=image)
    status, uploaded, _ = call("POST", "/predict/digits", {"upload": KEY})
    assert status == 200, uploaded
    status, inline, _ = call("POST", "/predict/digits", {"image": base64.b64encode(image).decode()})
    assert status == 200
    assert uploaded["label"] == inline["label"] == 3
    assert uploaded["probabilities"] == inline["probabilities"]
    assert stage.keys() == []


def test_predict_upload_refusals(stage: Stage, call: Call) -> None:
    status, body, _ = call("POST", "/predict/digits", {"upload": KEY})
    assert (status, body["error"]["code"]) == (404, "upload_not_found")
    status, body, _ = call("POST", "/predict/digits", {"upload": "elsewhere/" + "0" * 32})
    assert (status, body["error"]["code"]) == (404, "upload_not_found")
    stage.s3.put_object(Bucket=stage.bucket, Key=KEY, Body=_png(1))
    both = {"upload": KEY, "image": base64.b64encode(_png(1)).decode()}
    status, body, _ = call("POST", "/predict/digits", both)
    assert (status, body["error"]["code"]) == (422, "invalid_field")
    assert stage.keys() == [KEY]
    stage.s3.put_object(Bucket=stage.bucket, Key=KEY, Body=b"plain text, not a digit")
    status, body, _ = call("POST", "/predict/digits", {"upload": KEY})
    assert (status, body["error"]["code"]) == (415, "unsupported_image")
    assert stage.keys() == []  # a definitive refusal deletes it
