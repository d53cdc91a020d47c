"""How the models function answers when the SageMaker endpoint hosting a model fails
(lens.predict.sagemaker.mapped_error on botocore's parsed error responses), and when it
forwards at all. The path through a real InvokeEndpoint:
tests/serve/test_sagemaker_forwarding.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from lens.predict import sagemaker
from lens.predict.registry import ModelEntry, registry


def hosted(host: str | None = "sagemaker:big-ep") -> ModelEntry:
    entry = registry().get("tabular")
    assert entry is not None
    return entry.model_copy(update={"host": host})


def response(code: str, status: int, message: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }


SECRET = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/big-ep"


NOT_FOUND = "Endpoint big-ep of account 123456789012 not found."
CASES = [
    (response("ValidationError", 413, "Request 1 has oversize body."), 413, "payload_too_large"),
    (response("ValidationError", 400, NOT_FOUND), 502, "endpoint_not_found"),
    (response("ModelError", 424, SECRET, OriginalStatusCode=0), 504, "model_timeout"),
    (
        response("ModelError", 424, SECRET, OriginalStatusCode=500, OriginalMessage="Traceback"),
        502,
        "model_error",
    ),
    (response("ThrottlingException", 400, SECRET), 503, "endpoint_busy"),
    (response("ModelNotReadyException", 429, SECRET), 503, "endpoint_busy"),
    (response("InternalFailure", 500, SECRET), 503, "endpoint_busy"),
    (response("AccessDeniedException", 403, SECRET), 502, "endpoint_forbidden"),
    (response("SomethingNew", 400, SECRET), 502, "endpoint_error"),
]


@pytest.mark.parametrize(("error", "status", "code"), CASES)
def test_sagemakers_failures_are_the_projects_errors_without_its_messages(
    error: dict[str, Any], status: int, code: str
) -> None:
    mapped = sagemaker.mapped_error(hosted(), error)
    assert (mapped.status, mapped.code) == (status, code)
    assert "123456789012" not in mapped.message and "arn:" not in mapped.message
    assert "Traceback" not in mapped.message


def test_our_containers_4xx_is_passed_through_field_by_field() -> None:
    body = {"error": {"code": "invalid_field", "message": "Field 'x' is required."}, "extra": 1}
    error = response(
        "ModelError", 424, SECRET, OriginalStatusCode=422, OriginalMessage=json.dumps(body)
    )
    mapped = sagemaker.mapped_error(hosted(), error)
    assert (mapped.status, mapped.code, mapped.message) == (
        422,
        "invalid_field",
        "Field 'x' is required.",
    )
    # Not our body (a foreign container's page): a 502 that says nothing of it.
    foreign = response("ModelError", 424, "", OriginalStatusCode=404, OriginalMessage="<html>")
    assert sagemaker.mapped_error(hosted(), foreign).code == "model_error"


def test_the_endpoint_itself_never_forwards_its_own_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sagemaker.ENDPOINT_MODELS_ENV, raising=False)
    monkeypatch.delenv("SCARAB_MODEL_DIR", raising=False)
    assert sagemaker.forwards(hosted())
    assert not sagemaker.forwards(hosted(None))
    monkeypatch.setenv(sagemaker.ENDPOINT_MODELS_ENV, "digits, tabular")
    assert not sagemaker.forwards(hosted())
    monkeypatch.setenv(sagemaker.ENDPOINT_MODELS_ENV, "digits")
    assert sagemaker.forwards(hosted())
    monkeypatch.setenv("SCARAB_MODEL_DIR", "/opt/ml/model")
    assert not sagemaker.forwards(hosted())
