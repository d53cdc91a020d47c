"""POST /uploads: a presigned S3 POST for one photo (lens.uploads)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from lens.errors import ApiError
from lens.intake import parse_json
from lens.routing import LensRouter
from lens.schema import ErrorResponse, UploadGrantResponse
from lens.uploads import grant

router = LensRouter()


def errors(*statuses: int) -> dict[int, Any]:
    return {
        status: {
            "description": "An error (see error.code)",
            "content": {"application/json": {"model": ErrorResponse}},
        }
        for status in statuses
    }


def json_object(raw: str | None) -> dict[str, Any]:
    """The request body as a JSON object (400 invalid_body / malformed_json)."""
    if not raw:
        raise ApiError(400, "invalid_body", "The request body must be a JSON object.")
    try:
        body = parse_json(raw)
    except ValueError:
        raise ApiError(400, "malformed_json", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "The request body must be a JSON object.")
    return body


@router.post(
    "/uploads",
    summary="Get a presigned POST to upload a large photo",
    description='Body {"content_type": "image/jpeg", "bytes": N}. Answers 201 with the URL and '
    "form fields of a presigned S3 POST (5 minutes, that type, 1..max_bytes bytes); pass "
    'the key as {"upload": key} to /analyze, /predict/{model_id} or /jobs.',
    responses={
        201: {
            "description": "The upload grant",
            "content": {"application/json": {"model": UploadGrantResponse}},
        },
        **errors(400, 413, 415, 422, 503),
    },
    tags=["uploads"],
)
def create_upload() -> Response[str]:
    body = json_object(router.current_event.decoded_body)
    content_type = body.get("content_type")
    size = body.get("bytes")
    if not isinstance(content_type, str) or not content_type.strip():
        raise ApiError(422, "invalid_field", "The field content_type must be a MIME type string.")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ApiError(422, "invalid_field", "The field bytes must be a positive whole number.")
    answer = {"upload": grant(content_type.split(";", 1)[0].strip().lower(), size)}
    return Response(
        status_code=201, content_type=content_types.APPLICATION_JSON, body=json.dumps(answer)
    )
