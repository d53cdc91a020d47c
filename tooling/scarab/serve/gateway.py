"""API Gateway's request pipeline for one REST API stage, from a deployed snapshot.

Order of the rules, as API Gateway applies them: body size, route (resource and
method), API key, usage plan throttle then quota, then the integration (MOCK, or a
Lambda proxy invocation bounded by the integration timeout), then the check of the
proxy result.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from scarab.serve.limits import Limiter, Verdict
from scarab.serve.metrics import ApiRequest, Invocation, MetricStore
from scarab.serve.proxy_event import (
    IncomingRequest,
    MalformedResult,
    build_event,
    read_proxy_result,
)
from scarab.serve.responses import (
    BODY_LIMIT_MESSAGE,
    HttpResponse,
    RequestView,
    gateway_error,
    mock_response,
)
from scarab.serve.runtime import FunctionRuntime, InvokeError, InvokeTimeout
from scarab.serve.snapshot import Snapshot

log = logging.getLogger("scarab.serve")

BODY_LIMIT = 10 * 1024 * 1024  # API Gateway's payload limit
EVENT_LIMIT = 6_291_456  # Lambda's synchronous invocation payload limit
DEFAULT_INTEGRATION_TIMEOUT = 29.0
# Local only: which function version answered a request through an alias or version.
VERSION_HEADER = "X-Scarab-Version"
REPORT_EVERY_S = 30.0


@dataclass(frozen=True)
class GatewayOptions:
    integration_timeout: float = DEFAULT_INTEGRATION_TIMEOUT


def _view(
    request: IncomingRequest,
    snapshot: Snapshot | None,
    request_id: str,
    path_parameters: Mapping[str, str] | None = None,
) -> RequestView:
    from urllib.parse import parse_qsl

    return RequestView(
        headers=MappingProxyType(dict(request.headers)),
        query=MappingProxyType(dict(parse_qsl(request.raw_query))),
        path_parameters=MappingProxyType(dict(path_parameters or {})),
        stage_variables=snapshot.stage_variables if snapshot else MappingProxyType({}),
        request_id=request_id,
        stage=snapshot.stage if snapshot else "",
    )


class Gateway:
    """Answers requests under `/{stage}/` the way the deployed REST API would."""

    def __init__(
        self,
        runtime: FunctionRuntime,
        options: GatewayOptions | None = None,
        *,
        metrics: MetricStore | None = None,
        rng: Callable[[], float] | None = None,
    ) -> None:
        """`rng` gives the uniform [0, 1) number that picks an alias's version per request
        (tests pass a seeded one); `metrics` receives each request's CloudWatch metrics."""
        self.runtime = runtime
        self.options = options or GatewayOptions()
        self.limiter = Limiter()
        self.metrics = metrics if metrics is not None else MetricStore()
        self.rng = rng or random.Random().random
        self._reported: dict[str, tuple[str, float]] = {}

    def _report(self, route: str, problem: str) -> None:
        """Log a configuration error once per route every half minute, not per request."""
        now = time.monotonic()
        last = self._reported.get(route)
        if last is None or last[0] != problem or now - last[1] > REPORT_EVERY_S:
            self._reported[route] = (problem, now)
            log.error("%s: Execution failed due to configuration error: %s", route, problem)

    async def handle(
        self, request: IncomingRequest, snapshot: Snapshot | None, *, body_too_large: bool = False
    ) -> HttpResponse:
        started = time.monotonic()
        response = await self._handle(request, snapshot, body_too_large=body_too_large)
        if snapshot is not None:
            latency = (time.monotonic() - started) * 1000
            api = snapshot.api_name or snapshot.rest_api_id
            self.metrics.record_api_request(
                ApiRequest(api, snapshot.stage, response.status, latency)
            )
        return response

    async def _handle(
        self, request: IncomingRequest, snapshot: Snapshot | None, *, body_too_large: bool = False
    ) -> HttpResponse:
        request_id = str(uuid.uuid4())
        responses = snapshot.gateway_responses if snapshot else MappingProxyType({})

        def error(
            kind: str, message: str | None = None, **view_args: Mapping[str, str]
        ) -> HttpResponse:
            view = _view(request, snapshot, request_id, view_args.get("path_parameters"))
            return gateway_error(kind, responses, request_id, view, message)

        if body_too_large:
            return error("REQUEST_TOO_LARGE", BODY_LIMIT_MESSAGE)
        if snapshot is None:
            return error("MISSING_AUTHENTICATION_TOKEN")
        target = snapshot.route(request.method, request.path)
        if target is None:
            return error("MISSING_AUTHENTICATION_TOKEN")
        method, resource = target.method, target.resource
        params = target.path_parameters

        api_key_value: str | None = None
        api_key_id: str | None = None
        if method.api_key_required:
            api_key_value = request.header("x-api-key")
            entry = snapshot.keys.get(api_key_value) if api_key_value else None
            if entry is None or not entry[0].enabled:
                return error("INVALID_API_KEY", path_parameters=params)
            key, plan = entry
            api_key_id = key.id
            verdict = self.limiter.check(plan, key.id, f"{resource.path}/{method.http_method}")
            if verdict is Verdict.THROTTLED:
                return error("THROTTLED", path_parameters=params)
            if verdict is Verdict.QUOTA_EXCEEDED:
                return error("QUOTA_EXCEEDED", path_parameters=params)

        integration = method.integration
        if integration is None:
            log.error("%s %s has no integration", request.method, resource.path)
            return error("API_CONFIGURATION_ERROR", path_parameters=params)
        if integration.type == "MOCK":
            view = _view(request, snapshot, request_id, params)
            return mock_response(integration, view, request.header("content-type"))
        ref = integration.function_ref(snapshot.stage_variables)
        problem = snapshot.problems.get(ref) if ref else None
        if problem is not None:
            self._report(f"{request.method} {resource.path}", problem)
            return error("API_CONFIGURATION_ERROR", path_parameters=params)
        versions = snapshot.targets.get(ref) if ref else None
        fn = versions.choose(self.rng()) if versions else snapshot.functions.get(ref or "")
        if integration.type != "AWS_PROXY" or fn is None:
            log.error(
                "%s %s: %s integration to %s cannot run locally",
                request.method,
                resource.path,
                integration.type,
                ref or integration.uri,
            )
            return error("API_CONFIGURATION_ERROR", path_parameters=params)

        event = build_event(
            request,
            resource_path=resource.path,
            resource_id=resource.id,
            path_parameters=params,
            stage=snapshot.stage,
            stage_variables=snapshot.stage_variables,
            rest_api_id=snapshot.rest_api_id,
            account_id=snapshot.account_id,
            request_id=request_id,
            api_key=api_key_value,
            api_key_id=api_key_id,
            binary_media_types=snapshot.binary_media_types,
        )
        event_json = json.dumps(event, separators=(",", ":")).encode()
        if len(event_json) > EVENT_LIMIT:
            return error("REQUEST_TOO_LARGE", path_parameters=params)

        wait = self.options.integration_timeout
        if integration.timeout_ms:
            wait = min(wait, integration.timeout_ms / 1000)
        qualifier = versions.qualifier if versions is not None else None
        ran = fn
        version = [(VERSION_HEADER, fn.version)] if qualifier is not None else []
        started = time.monotonic()

        def record(failed: bool) -> None:
            duration = (time.monotonic() - started) * 1000
            self.metrics.record_invocation(
                Invocation(ran.name, qualifier, ran.version, duration, error=failed)
            )

        try:
            # The handler's context names what the integration invoked (an alias's ARN).
            invoked = ref if ref and ref.startswith("arn:") else None
            result = await self.runtime.invoke(fn, event_json, request_id, wait, invoked)
        except InvokeTimeout:
            # The invocation goes on past the caller (as in Lambda): its own outcome is
            # not known here, so only the API's 504 is counted.
            log.warning(
                "%s %s: integration timed out after %.1fs", request.method, resource.path, wait
            )
            return _with(error("INTEGRATION_TIMEOUT", path_parameters=params), version)
        except InvokeError as exc:
            record(failed=True)
            log.warning(
                "%s %s: Lambda invocation failed (%s): %s",
                request.method,
                resource.path,
                exc.error_type,
                exc.message[:300],
            )
            return _with(error("INTEGRATION_FAILURE", path_parameters=params), version)
        record(failed=False)
        try:
            response = read_proxy_result(
                result,
                accept=request.header("accept"),
                binary_media_types=snapshot.binary_media_types,
            )
        except MalformedResult as exc:
            log.warning(
                "%s %s: Execution failed due to configuration error: "
                "Malformed Lambda proxy response (%s)",
                request.method,
                resource.path,
                exc,
            )
            return _with(error("INTEGRATION_FAILURE", path_parameters=params), version)
        response.headers.append(("x-amzn-RequestId", request_id))
        return _with(response, version)


def _with(response: HttpResponse, headers: list[tuple[str, str]]) -> HttpResponse:
    response.headers.extend(headers)
    return response
