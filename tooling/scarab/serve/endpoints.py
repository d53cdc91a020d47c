"""sagemaker-runtime InvokeEndpoint, emulated by `scarab serve` for the functions it runs.

Every worker gets AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME = serve's own `/_sagemaker` (boto3
sends that service there and everything else to the emulator), so the models function's
forwarding (lens.predict.sagemaker) reaches this handler. An endpoint serves the
registry's models whose host is `sagemaker:<endpoint>`: they run in endpoint workers
(scarab.serve.endpoint_worker, with the models function's code and environment; the same
lens.predict core) under SageMaker Serverless's limits: a request payload of at most
4 MB, 60 s per invocation. Answers and errors are shaped as SageMaker's (rest-json:
`x-amzn-ErrorType` and a JSON body), so botocore raises what it raises against AWS.

Which endpoints exist locally: the stage's own (Names.endpoint, what `scarab deploy
--target sagemaker` creates) and any the emulator has (DescribeEndpoint); any other name
is answered as SageMaker answers a missing endpoint.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from scarab.serve.responses import HttpResponse
from scarab.serve.runtime import FunctionRuntime, InvokeError, InvokeTimeout
from scarab.serve.snapshot import FunctionConfig, Snapshot

PREFIX = "/_sagemaker"
# boto3's service-specific endpoint variable for sagemaker-runtime.
ENDPOINT_ENV = "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"
# SageMaker Serverless Inference: the request payload and the container's time to answer.
PAYLOAD_LIMIT = 4 * 1024 * 1024
INVOCATION_TIMEOUT_S = 60
HANDLER = "scarab.serve.endpoint_worker.handler"
ATTRIBUTES_HEADER = "x-amzn-sagemaker-custom-attributes"
_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
_REGISTRY_ENV = "MODEL_REGISTRY_TABLE"  # what marks the models function (lens.predict.sources)


def _error(status: int, code: str, message: str, **extra: Any) -> HttpResponse:
    body = json.dumps({"message": message, **extra}).encode()
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    return HttpResponse(status, headers, body)


def oversize(request_id: str) -> HttpResponse:
    """What SageMaker Serverless answers a request payload over 4 MB."""
    return _error(413, "ValidationError", f"Request {request_id} has oversize body.")


def _timed_out() -> HttpResponse:
    return _error(
        424,
        "ModelError",
        'Received server error (0) from primary with message "Your invocation timed out'
        ' while waiting for a response from container primary."',
        OriginalStatusCode=0,
    )


def endpoint_worker(snapshot: Snapshot | None) -> FunctionConfig | None:
    """The models function's configuration, rerun with the endpoint handler and SageMaker's
    time limit (None when nothing reads a registry)."""
    if snapshot is None:
        return None
    models = sorted(
        (fn for fn in snapshot.configs() if _REGISTRY_ENV in fn.environment),
        key=lambda fn: fn.version != "$LATEST",
    )
    if not models:
        return None
    # Its own name: the runtime keeps one pool per function identity, and the models
    # function's warm containers must not be replaced by the endpoint's.
    fn = models[0]
    return replace(fn, name=f"{fn.name}-sagemaker", handler=HANDLER, timeout_s=INVOCATION_TIMEOUT_S)


def emulated_endpoints(own: str, endpoint_url: str, region: str) -> Callable[[str], bool]:
    """Whether an endpoint exists locally: `own` (the stage's), or one the emulator has."""
    from botocore.config import Config

    from scarab.emulator import emulator_session

    config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1})
    client = emulator_session(region).client("sagemaker", endpoint_url=endpoint_url, config=config)

    def exists(name: str) -> bool:
        if name == own:
            return True
        try:
            client.describe_endpoint(EndpointName=name)
        except Exception:  # missing, or the emulator cannot say: SageMaker's "not found"
            return False
        return True

    return exists


class EndpointEmulator:
    """Answers `POST /_sagemaker/endpoints/<name>/invocations`."""

    def __init__(
        self,
        runtime: FunctionRuntime,
        snapshot: Callable[[], Snapshot | None],
        exists: Callable[[str], bool],
        timeout_s: float = INVOCATION_TIMEOUT_S,
    ) -> None:
        self.runtime = runtime
        self.snapshot = snapshot
        self.exists = exists
        self.timeout_s = timeout_s

    async def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, too_large: bool
    ) -> HttpResponse:
        request_id = str(uuid.uuid4())
        match = _PATH.match(path)
        if method != "POST" or match is None:
            return _error(404, "UnknownOperationException", "Unknown operation.")
        if too_large:
            return oversize(request_id)
        endpoint = match.group(1)
        snapshot = self.snapshot()
        fn = endpoint_worker(snapshot)
        account = snapshot.account_id if snapshot else ""
        missing = _error(
            400, "ValidationError", f"Endpoint {endpoint} of account {account} not found."
        )
        if fn is None or not await asyncio.to_thread(self.exists, endpoint):
            return missing
        fn = replace(fn, timeout_s=max(1, round(self.timeout_s)))
        event = {
            "endpoint": endpoint,
            "attributes": headers.get(ATTRIBUTES_HEADER, ""),
            "body": body.decode("utf-8", "replace"),
        }
        try:
            result = await self.runtime.invoke(
                fn, json.dumps(event).encode(), request_id, self.timeout_s + 5
            )
        except (InvokeTimeout, InvokeError) as exc:
            if isinstance(exc, InvokeTimeout) or exc.error_type == "Sandbox.Timedout":
                return _timed_out()
            return _error(500, "InternalFailure", "An internal failure occurred.")
        if not isinstance(result, dict) or result.get("busy"):
            return _error(503, "ServiceUnavailable", "The service is unavailable.")
        if result.get("missing"):
            return missing
        status = int(result.get("status") or 500)
        answer = json.dumps(result.get("body"), separators=(",", ":"))
        if status != 200:
            return _error(
                424,
                "ModelError",
                f'Received client error ({status}) from primary with message "{answer[:200]}".',
                OriginalStatusCode=status,
                OriginalMessage=answer,
            )
        return HttpResponse(
            200,
            [
                ("Content-Type", "application/json"),
                ("x-Amzn-Invoked-Production-Variant", "AllTraffic"),
            ],
            answer.encode(),
        )
