"""Lambda's Invoke at `/_lambda/2015-03-31/functions/<name>/invocations`, for the
functions serve runs, in serve's own worker pool.

The functions' workers get AWS_ENDPOINT_URL_LAMBDA = `<serve>/_lambda`
(scarab.serve.server), so a function that invokes a function (itself, asynchronously,
for a job) comes here. `<name>` is a function name, `name:qualifier`, a partial ARN
(`<account>:function:<name>`) or a full ARN, with an optional `?Qualifier=`; it is
resolved in the emulator (the function, version or alias, by weight) to the same
configuration the API's integrations run, so the same warm workers, code, environment
and secrets answer.

- RequestResponse (the default): runs and answers as Lambda: 200 and the payload, or 200
  with X-Amz-Function-Error: Unhandled and `{"errorMessage", "errorType", ...}`.
- Event: answers 202 at once and runs the event in the background. When it fails (the
  handler raises, the worker dies or times out) it is retried per the function's
  EventInvokeConfig MaximumRetryAttempts (read from the emulator; default 2) after a
  delay (Lambda waits about 1 and 2 minutes; here SCARAB_SERVE_ASYNC_RETRY_DELAY_S,
  default 1 s, doubled per retry). After the last attempt the event goes to the
  function's DeadLetterConfig target, as Lambda sends it (body = the event,
  attributes RequestID, ErrorCode, ErrorMessage): an SQS queue with an enabled event
  source mapping to a function serve runs gets the mapping's behaviour directly (that
  function is invoked with an SQS event whose record body is the event; records it
  reports in batchItemFailures, or all of them if it raises, are left in the queue, as
  Lambda leaves them); any other queue gets SendMessage in the emulator; an SNS topic
  gets Publish. Without a DeadLetterConfig the event is dropped (logged), as in Lambda.
- DryRun: 204.

Only the functions' own SDK calls are served: a request must be SigV4-signed (service
"lambda", serve's region) by the emulator's credentials (scarab.serve.sigv4), else 403
as Lambda answers, and one with an Origin header is refused (Lambda's API serves no
browser; without this, any page the developer visits could run the function with a
forged API Gateway event, as a text/plain POST needs no CORS preflight).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from scarab.emulator import emulator_session
from scarab.serve import sigv4
from scarab.serve.aliases import FunctionTarget, split_ref
from scarab.serve.responses import HttpResponse
from scarab.serve.runtime import FunctionRuntime, InvokeError, InvokeTimeout
from scarab.serve.snapshot import FunctionConfig

log = logging.getLogger("scarab.serve")

PREFIX = "/_lambda"
# boto3's service-specific endpoint variable for Lambda.
ENDPOINT_ENV = "AWS_ENDPOINT_URL_LAMBDA"
RETRY_DELAY_ENV = "SCARAB_SERVE_ASYNC_RETRY_DELAY_S"
DEFAULT_RETRIES = 2  # Lambda's default MaximumRetryAttempts for asynchronous invocations
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
EVENT_PAYLOAD_LIMIT = 1024 * 1024  # asynchronous invocations (1 MB since 2025; 256 KB before)
# How long an Event invocation may wait for a free worker before it counts as failed.
EVENT_QUEUE_S = 300.0
# How long a function only Invoke uses keeps its warm workers (Lambda keeps idle
# environments for minutes too).
KEEP_WARM_S = 600.0
_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_PARTIAL_ARN = re.compile(r"^\d{12}:function:(?P<rest>.+)$")


def _error(status: int, code: str, message: str) -> HttpResponse:
    body = json.dumps({"Type": "User", "Message": message, "message": message}).encode()
    return HttpResponse(
        status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)], body
    )


# Lambda's answers to a request its signature does not authorize (status, type, message).
_SIGNATURE_ERRORS = {
    sigv4.MISSING: (403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
    sigv4.MALFORMED: (403, "IncompleteSignatureException", ""),
    sigv4.UNKNOWN_KEY: (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    ),
    sigv4.BAD_TOKEN: (
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    ),
    sigv4.SKEWED: (403, "InvalidSignatureException", "Signature expired."),
    sigv4.EXPIRED: (403, "InvalidSignatureException", "Signature expired."),
    sigv4.CONTENT_SHA: (
        403,
        "InvalidSignatureException",
        "The x-amz-content-sha256 header does not match the body.",
    ),
    sigv4.MISMATCH: (
        403,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method.",
    ),
}


def authorize(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    region: str,
    secrets: Mapping[str, str] | None = None,
) -> HttpResponse | None:
    """Lambda's refusal of the request, or None when serve's credentials signed it.
    `raw_path` is the path as sent, /_lambda included (what the client signed)."""
    if any(name.lower() == "origin" for name, _ in headers):
        return _error(
            403, "AccessDeniedException", "Lambda's Invoke API does not serve browsers (Origin)."
        )
    try:
        sigv4.verify(
            method=method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            body=body,
            service="lambda",
            region=region,
            secrets=secrets,
        )
    except sigv4.SignatureRefused as refused:
        log.info("Lambda %s %s refused: %s", method, raw_path[:200], refused.message)
        status, code, message = _SIGNATURE_ERRORS[refused.reason]
        return _error(status, code, message or refused.message)
    return None


def retry_delay() -> float:
    """The first retry's delay (seconds); each further retry waits twice as long."""
    try:
        return max(0.0, float(os.environ.get(RETRY_DELAY_ENV, "1")))
    except ValueError:
        return 1.0


def function_ref(name: str, qualifier: str | None) -> str:
    """The reference to resolve: a name or ARN with its qualifier (a partial ARN as a
    name). A `?Qualifier=` that contradicts the one in the name is ValueError."""
    partial = _PARTIAL_ARN.match(name)
    ref = partial.group("rest") if partial else name
    base, inline = split_ref(ref)
    if qualifier and inline and qualifier != inline:
        raise ValueError(
            f"The derived qualifier from the function name does not match {qualifier}."
        )
    chosen = inline or qualifier
    return f"{base}:{chosen}" if chosen else base


def invoked_arn(target: FunctionTarget, fn: FunctionConfig) -> str:
    """The ARN the caller named: the function's, qualified as it was (context's
    invoked_function_arn on Lambda)."""
    base = fn.arn.split(":function:")[0] + ":function:" + fn.name
    return f"{base}:{target.qualifier}" if target.qualifier else base


def sqs_event(
    payload: bytes, queue_arn: str, region: str, attributes: Mapping[str, str]
) -> tuple[dict[str, Any], str]:
    """The SQS event an event source mapping delivers for one message; its messageId."""
    message_id = str(uuid.uuid4())
    now_ms = str(int(time.time() * 1000))
    body = payload.decode("utf-8", "replace")
    record = {
        "messageId": message_id,
        "receiptHandle": uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now_ms,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {
            k: {
                "stringValue": v,
                "dataType": "String",
                "stringListValues": [],
                "binaryListValues": [],
            }
            for k, v in attributes.items()
        },
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    return {"Records": [record]}, message_id


class LambdaInvoker:
    """Answers Invoke for the functions serve runs; runs Event invocations' retries."""

    def __init__(
        self,
        runtime: FunctionRuntime,
        emulator_url: str,
        region: str,
        rng: Callable[[], float],
    ) -> None:
        self.runtime = runtime
        self.region = region
        self.rng = rng
        config = Config(
            connect_timeout=3, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"}
        )
        session = emulator_session(region)
        self._lambda = session.client("lambda", endpoint_url=emulator_url, config=config)
        self._sqs = session.client("sqs", endpoint_url=emulator_url, config=config)
        self._sns = session.client("sns", endpoint_url=emulator_url, config=config)
        self._tasks: set[asyncio.Task[None]] = set()
        # identity -> when last invoked here (see in_use).
        self._used: dict[tuple[str, str], float] = {}

    def authorize(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
    ) -> HttpResponse | None:
        """Lambda's refusal of an unsigned, badly signed or browser request (see
        `authorize`); None when it may be handled."""
        return authorize(method, raw_path, raw_query, headers, body, self.region)

    async def handle(
        self,
        method: str,
        path: str,
        raw_query: str,
        headers: Mapping[str, str],
        body: bytes,
        too_large: bool,
    ) -> HttpResponse:
        """One Invoke request (`headers` with lower-case names)."""
        match = _PATH.match(path)
        if method != "POST" or match is None:
            return _error(404, "UnknownOperationException", "Unknown operation.")
        kind = headers.get("x-amz-invocation-type", "RequestResponse")
        if kind not in ("RequestResponse", "Event", "DryRun"):
            return _error(
                400, "InvalidParameterValueException", f"Unsupported InvocationType: {kind}"
            )
        limit = EVENT_PAYLOAD_LIMIT if kind == "Event" else SYNC_PAYLOAD_LIMIT
        if too_large or len(body) > limit:
            return _error(
                413,
                "RequestEntityTooLargeException",
                f"Request must be smaller than {limit} bytes for the Invoke operation",
            )
        try:
            payload = json.dumps(json.loads(body or b"{}"), separators=(",", ":")).encode()
        except ValueError:
            return _error(
                400,
                "InvalidRequestContentException",
                "Could not parse request body into json: Unexpected character",
            )
        qualifier = next(iter(parse_qs(raw_query).get("Qualifier") or []), None)
        try:
            ref = function_ref(match.group("name"), qualifier)
        except ValueError as exc:
            return _error(400, "InvalidParameterValueException", str(exc))
        try:
            target = await asyncio.to_thread(self._resolve, ref)
        except ClientError:
            arn = ref if ref.startswith("arn:") else f"function {ref}"
            return _error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        except Exception as exc:  # a routing problem, or the emulator does not answer
            return _error(500, "ServiceException", f"The function cannot be resolved: {exc}")
        fn = target.choose(self.rng())
        self._used[fn.identity] = time.monotonic()
        executed = [("X-Amz-Executed-Version", fn.version)]
        if kind == "DryRun":
            return HttpResponse(204, executed, b"")
        request_id = str(uuid.uuid4())
        if kind == "Event":
            task = asyncio.get_running_loop().create_task(
                self._run_event(target, fn, payload, request_id)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return HttpResponse(202, [("x-amzn-RequestId", request_id)], b"")
        headers_out = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)]
        try:
            result = await self.runtime.invoke(
                fn, payload, request_id, fn.timeout_s + 5, invoked_arn(target, fn)
            )
        except (InvokeError, InvokeTimeout) as exc:
            error = self._error_body(fn, exc)
            return HttpResponse(
                200,
                [*headers_out, *executed, ("X-Amz-Function-Error", "Unhandled")],
                json.dumps(error).encode(),
            )
        return HttpResponse(200, [*headers_out, *executed], json.dumps(result).encode())

    @staticmethod
    def _error_body(fn: FunctionConfig, exc: Exception) -> dict[str, Any]:
        if isinstance(exc, InvokeError):
            return {"errorMessage": exc.message, "errorType": exc.error_type, "stackTrace": []}
        message = f"Task timed out after {fn.timeout_s:.2f} seconds"
        return {"errorMessage": message, "errorType": "Sandbox.Timedout"}

    def in_use(self, within_s: float = KEEP_WARM_S) -> set[tuple[str, str]]:
        """The function versions invoked here lately: their workers stay warm even when
        no API route runs them (serve retires the workers of functions nothing uses)."""
        now = time.monotonic()
        for identity, used in list(self._used.items()):
            if now - used > within_s:
                del self._used[identity]
        return set(self._used)

    def _resolve(self, ref: str) -> FunctionTarget:
        from scarab.serve.watcher import resolve_target

        return resolve_target(self._lambda, ref)

    async def _run_event(
        self, target: FunctionTarget, fn: FunctionConfig, payload: bytes, request_id: str
    ) -> None:
        """Run an Event invocation with Lambda's retries, then its dead-letter delivery."""
        retries = await asyncio.to_thread(self._max_retries, target)
        delay = retry_delay()
        failure: Exception | None = None
        for attempt in range(retries + 1):
            if attempt:
                await asyncio.sleep(delay * 2 ** (attempt - 1))
            try:
                # Lambda's queue holds an event until a worker is free (not a caller's
                # deadline): a busy pool delays it, and the function's timeout bounds the run.
                await self.runtime.invoke(
                    fn, payload, request_id, fn.timeout_s + EVENT_QUEUE_S, invoked_arn(target, fn)
                )
            except (InvokeError, InvokeTimeout) as exc:
                failure = exc
                body = self._error_body(fn, exc)
                log.warning(
                    "async invocation %s of %s failed (attempt %d of %d): %s",
                    request_id,
                    fn.name,
                    attempt + 1,
                    retries + 1,
                    body["errorType"],
                )
                continue
            return
        assert failure is not None
        error = self._error_body(fn, failure)
        try:
            await self._dead_letter(target, payload, request_id, error)
        except Exception:  # never let a background delivery die silently
            log.exception("dead-letter delivery of %s failed", request_id)

    def _max_retries(self, target: FunctionTarget) -> int:
        """MaximumRetryAttempts of the function's EventInvokeConfig (the qualifier's
        first, then the function's), else Lambda's default."""
        qualifiers = [target.qualifier, None] if target.qualifier else [None]
        for qualifier in qualifiers:
            try:
                config = self._lambda.get_function_event_invoke_config(
                    FunctionName=target.function, **({"Qualifier": qualifier} if qualifier else {})
                )
            except (ClientError, BotoCoreError):
                continue
            value = config.get("MaximumRetryAttempts")
            if isinstance(value, int):
                return max(0, min(2, value))
        return DEFAULT_RETRIES

    def _dead_letter_target(self, target: FunctionTarget) -> str | None:
        """The DeadLetterConfig of what was invoked, else of the function's $LATEST (a
        version published before the deploy set it, as the emulator may keep it)."""
        for qualifier in dict.fromkeys([target.qualifier, None]):
            kwargs = {"FunctionName": target.function}
            if qualifier:
                kwargs["Qualifier"] = qualifier
            try:
                config = self._lambda.get_function_configuration(**kwargs)
            except (ClientError, BotoCoreError):
                continue
            arn = (config.get("DeadLetterConfig") or {}).get("TargetArn")
            if arn:
                return str(arn)
        return None

    async def _dead_letter(
        self, target: FunctionTarget, payload: bytes, request_id: str, error: Mapping[str, Any]
    ) -> None:
        arn = await asyncio.to_thread(self._dead_letter_target, target)
        if arn is None:
            log.warning(
                "async invocation %s of %s failed after its retries; no dead-letter queue, "
                "the event is dropped",
                request_id,
                target.function,
            )
            return
        attributes = {
            "RequestID": request_id,
            "ErrorCode": "200",
            "ErrorMessage": str(error.get("errorMessage") or error.get("errorType") or "")[:1024],
        }
        if ":sns:" in arn:
            await asyncio.to_thread(self._publish, arn, payload, attributes)
            return
        mapped = await asyncio.to_thread(self._mapped_function, arn)
        if mapped is not None:
            await self._deliver_sqs(mapped, arn, payload, attributes)
            return
        await asyncio.to_thread(self._send, arn, payload, attributes)

    def _mapped_function(self, queue_arn: str) -> FunctionTarget | None:
        """The function an enabled event source mapping from the queue invokes, if any."""
        try:
            mappings = self._lambda.list_event_source_mappings(EventSourceArn=queue_arn)
        except (ClientError, BotoCoreError):
            return None
        for mapping in mappings.get("EventSourceMappings") or []:
            if str(mapping.get("State") or "Enabled") not in ("Enabled", "Enabling", "Creating"):
                continue
            try:
                return self._resolve(str(mapping["FunctionArn"]))
            except Exception as exc:  # the mapped function is gone: the message waits
                log.debug("event source mapping %s: %s", mapping.get("UUID"), exc)
        return None

    async def _deliver_sqs(
        self,
        mapped: FunctionTarget,
        queue_arn: str,
        payload: bytes,
        attributes: Mapping[str, str],
    ) -> None:
        """The event source mapping's invocation; what it does not take stays queued."""
        fn = mapped.choose(self.rng())
        self._used[fn.identity] = time.monotonic()
        event, message_id = sqs_event(payload, queue_arn, self.region, attributes)
        request_id = str(uuid.uuid4())
        try:
            result = await self.runtime.invoke(
                fn,
                json.dumps(event).encode(),
                request_id,
                fn.timeout_s + EVENT_QUEUE_S,
                invoked_arn(mapped, fn),
            )
        except (InvokeError, InvokeTimeout) as exc:
            log.warning(
                "the event source mapping's invocation of %s failed (%s); the message stays in %s",
                fn.name,
                self._error_body(fn, exc)["errorType"],
                queue_arn,
            )
            await asyncio.to_thread(self._send, queue_arn, payload, attributes)
            return
        failures = result.get("batchItemFailures") if isinstance(result, dict) else None
        if failures:
            log.warning(
                "%s reported batchItemFailures %s; the message stays in %s",
                fn.name,
                [f.get("itemIdentifier") for f in failures if isinstance(f, dict)],
                queue_arn,
            )
            if any(isinstance(f, dict) and f.get("itemIdentifier") == message_id for f in failures):
                await asyncio.to_thread(self._send, queue_arn, payload, attributes)

    def _send(self, queue_arn: str, payload: bytes, attributes: Mapping[str, str]) -> None:
        parts = queue_arn.split(":")
        url = self._sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])[
            "QueueUrl"
        ]
        self._sqs.send_message(
            QueueUrl=url,
            MessageBody=payload.decode("utf-8", "replace"),
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v
            },
        )

    def _publish(self, topic_arn: str, payload: bytes, attributes: Mapping[str, str]) -> None:
        self._sns.publish(
            TopicArn=topic_arn,
            Message=payload.decode("utf-8", "replace"),
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v
            },
        )

    async def close(self) -> None:
        """Stop the background invocations still waiting (serve is stopping)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
