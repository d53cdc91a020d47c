"""Forwarding /predict/{name} to the SageMaker endpoint that hosts the model.

A registry entry with `host = "sagemaker:<endpoint>"` is answered by sagemaker-runtime
InvokeEndpoint (EndpointName, ContentType application/json, CustomAttributes
`model=<name>`, the request body as sent), so callers keep the API Gateway URL, keys,
usage plan and CORS, and the response cache stays in front (lens.predict.routes calls
this only on a miss).

SageMaker's failures become the project's error body. Its own messages are never passed
on (they name the account, the endpoint's log stream and what the container printed);
a 4xx from our own container (lens.server) whose body is the project's error body is
passed through, so a hosted model refuses a request exactly as a local one does.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from lens.errors import ApiError
from lens.observability import logger
from lens.predict.registry import ModelEntry

CONTENT_TYPE = "application/json"
# The version too: the function resolved it (live, a split's candidate, ?version=), and
# the endpoint must answer with that one, not its own choice.
CUSTOM_ATTRIBUTES = "model={name},version={version}"
# SageMaker gives a container 60 s (Serverless); a little more for the round trip.
READ_TIMEOUT_S = 65
_BUSY = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailable",
        "ModelNotReadyException",
        "InternalDependencyException",
        "InternalFailure",
    }
)
_FORBIDDEN = frozenset({"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"})
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

# Set on the endpoint itself (contract with lens.server.sagemaker.ENDPOINT_MODELS_ENV): a
# model it serves is computed there, never forwarded again (to itself).
ENDPOINT_MODELS_ENV = "SCARAB_ENDPOINT_MODELS"
# Set on a process that IS a SageMaker endpoint (its name; `scarab serve --target
# sagemaker` sets it): an endpoint computes every model it is asked for and never calls
# InvokeEndpoint, which for a model whose host names this endpoint is a call to itself.
ENDPOINT_NAME_ENV = "SCARAB_ENDPOINT_NAME"

_client: Any = None


def forwards(entry: ModelEntry) -> bool:
    """Whether `entry`'s predictions go to its SageMaker endpoint: it is hosted on one, and
    this process is not that endpoint (which names its models in SCARAB_ENDPOINT_MODELS,
    or reads them from the model directory SageMaker extracts, SCARAB_MODEL_DIR) nor any
    endpoint at all (SCARAB_ENDPOINT_NAME)."""
    from lens.predict.registry import MODEL_DIR_ENV

    if entry.endpoint is None:
        return False
    if os.environ.get(MODEL_DIR_ENV, "").strip() or os.environ.get(ENDPOINT_NAME_ENV, "").strip():
        return False
    served = {n.strip() for n in os.environ.get(ENDPOINT_MODELS_ENV, "").split(",")}
    return entry.name not in served


def client() -> Any:
    """The sagemaker-runtime client (AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME or AWS_ENDPOINT_URL
    reach an emulator), made once per container."""
    global _client
    if _client is None:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=3,
            read_timeout=READ_TIMEOUT_S,
            # No retry: botocore's modes count a read timeout (and a 5xx) as transient, so
            # a slow endpoint was waited for three times and sent the same request again.
            # A busy or throttled endpoint is 503 endpoint_busy with Retry-After instead.
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        _client = boto3.client("sagemaker-runtime", config=config)
    return _client


def invoke(entry: ModelEntry, body: bytes) -> dict[str, Any]:
    """`entry`'s answer from its endpoint; ApiError (the project's body) when it fails."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    endpoint = entry.endpoint
    assert endpoint is not None, "invoke() is for hosted models"
    try:
        response = client().invoke_endpoint(
            EndpointName=endpoint,
            ContentType=CONTENT_TYPE,
            Accept=CONTENT_TYPE,
            CustomAttributes=CUSTOM_ATTRIBUTES.format(name=entry.name, version=entry.version),
            Body=body,
        )
        payload = response["Body"].read()
    except ClientError as exc:
        raise mapped_error(entry, exc.response) from None
    except ReadTimeoutError:
        _log(entry, "ReadTimeout", None)
        raise _timeout(entry) from None
    except (EndpointConnectionError, ConnectTimeoutError):
        _log(entry, "Unreachable", None)
        raise ApiError(
            503,
            "endpoint_unavailable",
            f"The SageMaker endpoint of model '{entry.name}' cannot be reached; try again shortly.",
            {"Retry-After": "1"},
        ) from None
    except BotoCoreError as exc:
        _log(entry, type(exc).__name__, None)
        raise _failed(entry) from None
    try:
        answer = json.loads(payload)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        _log(entry, "NotJson", 200)
        raise _failed(entry) from None
    answered = answer.get("model_version")
    if answered != entry.version:
        # Another version's answer (an endpoint deployed before this version was pushed)
        # is never passed on, nor cached under this version's key.
        _log(entry, "VersionMismatch", 200)
        shown = str(answered)[:64] if isinstance(answered, str) else "none"
        raise ApiError(
            502,
            "endpoint_version_mismatch",
            f"The SageMaker endpoint of model '{entry.name}' answered with version {shown},"
            f" not {entry.version}; deploy the endpoint again to serve this version.",
        )
    return answer


def mapped_error(entry: ModelEntry, response: dict[str, Any]) -> ApiError:
    """A ClientError's parsed response (botocore's `exc.response`) as the project's error."""
    error = response.get("Error") or {}
    code = str(error.get("Code") or "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = str(error.get("Message") or "")
    original = response.get("OriginalStatusCode")
    _log(entry, code, status, original)
    if code == "ValidationError":
        if status == 413 or "oversize body" in message:
            return ApiError(
                413,
                "payload_too_large",
                f"The request body is larger than the SageMaker endpoint of model"
                f" '{entry.name}' takes (4 MB).",
            )
        if "not found" in message.lower():
            return ApiError(
                502,
                "endpoint_not_found",
                f"Model '{entry.name}' is hosted on the SageMaker endpoint '{entry.endpoint}',"
                " which does not exist in this account and region.",
            )
        return _failed(entry)
    if code == "ModelError":
        if original == 0 or "timed out" in message:
            return _timeout(entry)
        passed = _our_error(original, response.get("OriginalMessage"))
        if passed is not None:
            return passed
        return ApiError(
            502,
            "model_error",
            f"The SageMaker endpoint of model '{entry.name}' failed to answer"
            + (f" (status {original})." if isinstance(original, int) else "."),
        )
    if code in _BUSY or status in (429, 503):
        return ApiError(
            503,
            "endpoint_busy",
            f"The SageMaker endpoint of model '{entry.name}' is busy or starting; try again"
            " shortly.",
            {"Retry-After": "1"},
        )
    if code in _FORBIDDEN or status == 403:
        return ApiError(
            502,
            "endpoint_forbidden",
            f"This function may not invoke the SageMaker endpoint of model '{entry.name}';"
            " run 'scarab deploy' to grant it.",
        )
    return _failed(entry)


def _our_error(status: Any, text: Any) -> ApiError | None:
    """A 4xx the container answered with the project's error body, rebuilt field by field
    (nothing else of it is passed on)."""
    if not isinstance(status, int) or not 400 <= status < 500 or not isinstance(text, str):
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) or not _CODE.match(code) or not isinstance(message, str):
        return None
    return ApiError(status, code, message[:500])


def _timeout(entry: ModelEntry) -> ApiError:
    return ApiError(
        504,
        "model_timeout",
        f"The SageMaker endpoint of model '{entry.name}' did not answer within its time limit.",
    )


def _failed(entry: ModelEntry) -> ApiError:
    return ApiError(
        502, "endpoint_error", f"The SageMaker endpoint of model '{entry.name}' failed to answer."
    )


def _log(entry: ModelEntry, code: str, status: Any, original: Any = None) -> None:
    # Codes and statuses only: SageMaker's messages can carry the container's output.
    logger.error(
        "sagemaker invocation failed",
        extra={
            "model": entry.name,
            "endpoint": entry.endpoint,
            "error_code": code[:64],
            "status": status,
            "original_status": original,
        },
    )
