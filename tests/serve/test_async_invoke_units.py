"""Units of scarab.serve.lambda_invoke: what a function reference resolves to, the ARN
the handler's context names, the SQS event an event source mapping delivers, and the
answers to requests that never reach a function."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from scarab.serve.aliases import FunctionTarget
from scarab.serve.lambda_invoke import LambdaInvoker, function_ref, invoked_arn, sqs_event
from scarab.serve.snapshot import FunctionConfig

ARN = "arn:aws:lambda:us-east-1:123456789012:function:scarab-dev-analyze"


def config(version: str = "$LATEST") -> FunctionConfig:
    arn = ARN if version == "$LATEST" else f"{ARN}:{version}"
    return FunctionConfig(
        name="scarab-dev-analyze",
        arn=arn,
        code_sha256="",
        handler="h.handler",
        runtime="python3.12",
        timeout_s=30,
        memory_mb=512,
        environment={},
        version=version,
    )


@pytest.mark.parametrize(
    ("name", "qualifier", "ref"),
    [
        ("scarab-dev-analyze", None, "scarab-dev-analyze"),
        ("scarab-dev-analyze", "live", "scarab-dev-analyze:live"),
        ("scarab-dev-analyze:live", None, "scarab-dev-analyze:live"),
        ("scarab-dev-analyze:live", "live", "scarab-dev-analyze:live"),
        (ARN, None, ARN),
        (f"{ARN}:live", None, f"{ARN}:live"),
        (ARN, "3", f"{ARN}:3"),
        ("123456789012:function:scarab-dev-analyze:live", None, "scarab-dev-analyze:live"),
    ],
)
def test_function_references(name: str, qualifier: str | None, ref: str) -> None:
    assert function_ref(name, qualifier) == ref


def test_a_contradicting_qualifier_is_refused() -> None:
    with pytest.raises(ValueError, match="does not match"):
        function_ref(f"{ARN}:live", "3")


def test_the_invoked_arn_is_what_the_caller_named() -> None:
    version = config("3")
    alias = FunctionTarget(function="scarab-dev-analyze", qualifier="live", primary=version)
    assert invoked_arn(alias, version) == f"{ARN}:live"
    plain = FunctionTarget(function="scarab-dev-analyze", qualifier=None, primary=config())
    assert invoked_arn(plain, config()) == ARN


def test_the_sqs_event_is_an_event_source_mappings() -> None:
    queue = "arn:aws:sqs:us-east-1:123456789012:scarab-dev-jobs-dlq"
    payload = b'{"scarab_job":"' + b"a" * 32 + b'"}'
    event, message_id = sqs_event(payload, queue, "us-east-1", {"ErrorMessage": "boom"})
    (record,) = event["Records"]
    assert record["messageId"] == message_id and record["receiptHandle"]
    assert json.loads(record["body"]) == {"scarab_job": "a" * 32}
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        queue,
        "us-east-1",
    )
    assert record["messageAttributes"]["ErrorMessage"]["stringValue"] == "boom"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert len(record["md5OfBody"]) == 32


def _answer(invoker: LambdaInvoker, method: str, path: str, body: bytes, **headers: str) -> Any:
    return asyncio.run(invoker.handle(method, path, "", headers, body, False))


def test_requests_that_reach_no_function() -> None:
    # No emulator is needed for these: they are refused before any look-up.
    invoker = LambdaInvoker(None, "http://127.0.0.1:9", "us-east-1", lambda: 0.0)  # type: ignore[arg-type]
    path = "/2015-03-31/functions/f/invocations"
    unknown = _answer(invoker, "GET", path, b"")
    assert (
        unknown.status == 404 and unknown.header("x-amzn-ErrorType") == "UnknownOperationException"
    )
    kind = _answer(invoker, "POST", path, b"{}", **{"x-amz-invocation-type": "Later"})
    assert kind.status == 400
    big = _answer(
        invoker,
        "POST",
        path,
        b'"' + b"x" * (1024 * 1024) + b'"',
        **{"x-amz-invocation-type": "Event"},
    )
    assert big.status == 413
    assert big.header("x-amzn-ErrorType") == "RequestEntityTooLargeException"
    bad = _answer(invoker, "POST", path, b"{nope")
    assert bad.status == 400 and json.loads(bad.body)["Message"].startswith("Could not parse")
