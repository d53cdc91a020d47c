"""A probe Lambda function for the serve tests: its answers show what the gateway sent.

Deployed next to the real function (see tests/serve/support.py); the action is the
path below /probe/.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from typing import Any

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
_seen = {"invocations": 0}
_lock = threading.Lock()


def _json(status: int, data: Any) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(data),
    }


def handler(event: dict[str, Any], context: Any) -> Any:
    action = (event.get("pathParameters") or {}).get("proxy", "")
    query = event.get("queryStringParameters") or {}
    with _lock:
        _seen["invocations"] += 1
    if action == "echo":
        return _json(
            200,
            {
                "event": event,
                "env": {
                    k: os.environ.get(k)
                    for k in (
                        "PROBE_VAR",
                        "AWS_LAMBDA_FUNCTION_NAME",
                        "AWS_ENDPOINT_URL",
                        "GOOGLE_GEMINI_BASE_URL",
                        "GOOGLE_API_KEY",
                        "AWS_REGION",
                    )
                },
                "context": {
                    "aws_request_id": context.aws_request_id,
                    "function_name": context.function_name,
                    "memory_limit_in_mb": context.memory_limit_in_mb,
                    "invoked_function_arn": context.invoked_function_arn,
                    "remaining_ms": context.get_remaining_time_in_millis(),
                },
                "pid": os.getpid(),
            },
        )
    if action == "sleep":
        start = context.get_remaining_time_in_millis()
        time.sleep(float(query.get("s", "1")))
        return _json(
            200,
            {
                "id": query.get("id"),
                "request_id": context.aws_request_id,
                "event_request_id": event["requestContext"]["requestId"],
                "start_ms": start,
                "end_ms": context.get_remaining_time_in_millis(),
            },
        )
    if action == "version":
        # A published version's own configuration decides: PROBE_FAIL=1 makes it fail.
        if os.environ.get("PROBE_FAIL") == "1":
            raise RuntimeError("this version fails on purpose (PROBE_FAIL=1)")
        return _json(
            200,
            {
                "version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
                "var": os.environ.get("PROBE_VAR"),
                "pid": os.getpid(),
            },
        )
    if action == "body-not-string":
        return {"statusCode": 200, "body": {"not": "a string"}}
    if action == "extra-field":
        return {"statusCode": 200, "body": "ok", "surprise": True}
    if action == "no-status":
        return {"body": "ok"}
    if action == "not-an-object":
        return "just a string"
    if action == "raise":
        raise RuntimeError("the probe failed on purpose")
    if action == "print":
        print("printed by the probe")  # must not break the worker protocol
        return _json(200, {"printed": True})
    if action == "binary":
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "image/png"},
            "body": base64.b64encode(PNG).decode(),
            "isBase64Encoded": True,
        }
    if action == "multi-headers":
        return {
            "statusCode": 201,
            "headers": {"X-One": "a"},
            "multiValueHeaders": {"X-Many": ["1", "2"]},
            "body": "",
        }
    if action == "big-response":
        return {"statusCode": 200, "body": "x" * 7_000_000}
    return _json(404, {"unknown": action})
