"""POST /jobs and GET /jobs/{id} (lens.jobs)."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from lens import jobs, uploads
from lens.errors import ApiError
from lens.images import sniff_format
from lens.intake import decode_image_field, header
from lens.jobs.store import JobStore
from lens.observability import logger
from lens.routes import image_source
from lens.routing import LensRouter
from lens.schema import AnalyzeRequest, JobAccepted, JobResponse
from lens.settings import get_settings
from lens.uploads.routes import errors

router = LensRouter()
IDEMPOTENCY_HEADER = "idempotency-key"
KEY_PREFIX = "scarab-jobs"  # Powertools' record ids: scarab-jobs#<hash>, never a job id


def store() -> JobStore:
    return JobStore(jobs.table(), get_settings().jobs_ttl_s)


@router.post(
    "/jobs",
    summary="Analyze a photo asynchronously",
    description="The /analyze body (image or upload). Answers 202 {job_id, status_url}; poll "
    "GET /jobs/{id}. An Idempotency-Key header makes a retried POST return the same job "
    "(the same key with another body is 409).",
    responses={
        202: {
            "description": "The job was accepted",
            "content": {"application/json": {"model": JobAccepted}},
        },
        **errors(400, 404, 409, 413, 415, 422, 503),
    },
    tags=["jobs"],
)
def create_job(body: AnalyzeRequest) -> Response[str]:
    jobs.table()  # 503 before any work when the stage has no table
    image_source(body)  # 400/422 for neither or both
    request = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    key = _idempotency_key()
    accepted = _create(request) if key is None else _idempotent_create(key, request)
    return Response(
        status_code=202, content_type=content_types.APPLICATION_JSON, body=json.dumps(accepted)
    )


@router.get(
    "/jobs/<id>",
    summary="A job's status, and its result when done",
    responses={
        200: {"description": "The job", "content": {"application/json": {"model": JobResponse}}},
        **errors(404, 503),
    },
    tags=["jobs"],
)
def get_job(id: str) -> dict[str, Any]:  # the path's {id}, as the API names it
    found = _read(id)
    if found is None:
        raise jobs.not_found()
    return found


def _read(job_id: str) -> dict[str, Any] | None:
    jobs_store = store()
    try:
        job = jobs_store.get(job_id)
    except Exception as exc:
        _failed("read", exc)
        raise jobs.unavailable() from None
    return job.view() if job is not None else None


def _failed(what: str, exc: Exception) -> None:
    logger.warning(
        f"jobs table {what} failed", extra={"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    )


def _idempotency_key() -> str | None:
    """The Idempotency-Key header (None when absent); 400 for a malformed one."""
    headers = router.current_event.raw_event.get("headers") or {}
    present = any(isinstance(k, str) and k.lower() == IDEMPOTENCY_HEADER for k in headers)
    if not present:
        return None
    # Surrounding whitespace is not part of a header value; a blank key would be one
    # key shared by every client that sends the header empty.
    value = header(router.current_event.raw_event, IDEMPOTENCY_HEADER).strip()
    if not value or len(value) > 255 or not value.isprintable():
        raise ApiError(
            400,
            "invalid_idempotency_key",
            "The Idempotency-Key header must be 1 to 255 printable characters.",
        )
    return value


def _caller() -> str:
    """Who the idempotency key belongs to: the API key's id (hashed), or anonymous."""
    context = router.current_event.raw_event.get("requestContext") or {}
    identity = context.get("identity") if isinstance(context, dict) else None
    key_id = identity.get("apiKeyId") if isinstance(identity, dict) else None
    caller = key_id if isinstance(key_id, str) and key_id else "anonymous"
    return hashlib.sha256(caller.encode()).hexdigest()


def _idempotent_create(key: str, request: dict[str, Any]) -> dict[str, Any]:
    """_create once per (caller, key): a repeat with the same body answers the first
    job; another body is 409 idempotency_conflict; during the first, 409 in progress."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    from lens.clients import client

    config = IdempotencyConfig(
        event_key_jmespath="[caller, key]",
        payload_validation_jmespath="body",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=get_settings().jobs_ttl_s,
    )
    context = router.lambda_context
    if callable(getattr(context, "get_remaining_time_in_millis", None)):
        # An in-progress record expires with this invocation, so a crash does not
        # block the key until the record's TTL.
        config.register_lambda_context(context)
    persistence = DynamoDBPersistenceLayer(table_name=jobs.table(), boto3_client=client("dynamodb"))

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="payload",
        persistence_store=persistence,
        config=config,
        key_prefix=KEY_PREFIX,
    )
    def create(payload: dict[str, Any]) -> dict[str, Any]:
        return _create(payload["body"])

    try:
        accepted: dict[str, Any] = create(
            payload={"caller": _caller(), "key": key, "body": request}
        )
    except IdempotencyValidationError:
        raise ApiError(
            409,
            "idempotency_conflict",
            "This Idempotency-Key was used with another request body.",
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise ApiError(
            409,
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still being handled; retry shortly.",
            {"Retry-After": "1"},
        ) from None
    except IdempotencyPersistenceLayerError as exc:
        _failed("idempotency", exc)
        raise jobs.unavailable() from None
    return accepted


def _create(request: dict[str, Any]) -> dict[str, Any]:
    """Store the job (an inline image first as an upload object) and start it."""
    body = AnalyzeRequest.model_validate(request)
    key = image_source(body)
    stored_here = False
    if key is None:
        data = decode_image_field(str(body.image), get_settings().max_image_bytes)
        if sniff_format(data) is None:
            raise ApiError(
                415,
                "unsupported_image",
                "The image is not a supported format; send a JPEG, PNG, WebP or GIF photo.",
            )
        key = uploads.store_upload(data)
        stored_here = True
    else:
        uploads.head_upload(uploads.check_key(key))  # 404/413 now, not in the job
    job_request = {k: v for k, v in request.items() if k != "image"} | {"upload": key}
    job_id = secrets.token_hex(16)
    jobs_store = store()
    try:
        jobs_store.create(job_id, job_request)
    except Exception as exc:
        _failed("write", exc)
        if stored_here:
            uploads.delete_upload(key)
        raise jobs.unavailable() from None
    try:
        _dispatch(job_id)
    except Exception as exc:
        _failed_dispatch(jobs_store, job_id, exc)
        if stored_here:
            uploads.delete_upload(key)
        raise ApiError(
            503, "dispatch_failed", "The job could not be started; please retry."
        ) from None
    return {"job_id": job_id, "status_url": f"/jobs/{job_id}"}


def _dispatch(job_id: str) -> None:
    """Invoke this function asynchronously with the job's event (lens.jobs.worker)."""
    import os

    from lens.clients import client

    context = router.lambda_context
    target = getattr(context, "invoked_function_arn", None) or os.environ.get(
        "AWS_LAMBDA_FUNCTION_NAME", ""
    )
    if not target:
        raise RuntimeError("no function to invoke")
    answer = client("lambda").invoke(
        FunctionName=target,
        InvocationType="Event",
        Payload=json.dumps({jobs.JOB_EVENT_KEY: job_id}).encode(),
    )
    if int(answer.get("StatusCode", 0)) != 202:
        raise RuntimeError(f"invoke answered {answer.get('StatusCode')}")


def _failed_dispatch(jobs_store: JobStore, job_id: str, exc: Exception) -> None:
    logger.error(
        "job dispatch failed",
        extra={"job_id": job_id, "error": f"{type(exc).__name__}: {str(exc)[:300]}"},
    )
    try:
        jobs_store.fail(job_id, "dispatch_failed", "The job could not be started.")
    except Exception as failure:  # the job stays queued; its TTL removes it
        _failed("write", failure)
