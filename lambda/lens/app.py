"""Resolvers for the three event shapes over a given set of routers, with one error handling.

REST (payload 1.0), HTTP API (2.0) and Function URL (2.0) events each get their own
Powertools resolver, built on first use, with validation, echoing CORS and the same
exception handlers: ApiError, validation errors (400/422), 404/405, anything else -> 500.
Which routers a resolver serves is the caller's choice (lens.function: one set per
Lambda function), so this module imports no routes.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    LambdaFunctionUrlResolver,
    Response,
)
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from lens import cache
from lens.cors import EchoCORSConfig, cors_headers
from lens.errors import ApiError
from lens.intake import EventKind, parse_json
from lens.invocation import current
from lens.observability import logger
from lens.responses import error_response, from_validation_errors, internal_error
from lens.routing import LensRouter, allowed_methods
from lens.settings import get_settings

Routers = tuple[LensRouter, ...]

_RESOLVERS: dict[str, type[ApiGatewayResolver]] = {
    "rest": APIGatewayRestResolver,
    "http": APIGatewayHttpResolver,
    "url": LambdaFunctionUrlResolver,
}


def build_resolver(kind: EventKind, routers: Routers) -> ApiGatewayResolver:
    """A resolver for `kind` events with these routers' routes, CORS and the error handlers."""
    cors = EchoCORSConfig(get_settings().allowed_origins)
    # parse_json: a body too deep or with a too-long number is 400 malformed_json, not 500.
    app = _RESOLVERS[kind](cors=cors, enable_validation=True, json_body_deserializer=parse_json)
    for router in routers:
        app.include_router(router)
    _install_error_handlers(app, cors, routers)

    def common_headers(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[str]:
        response = next_middleware(app)
        _decorate(response, cors)
        return response

    # The cache's runs inside: it reads Cache-Control and sets X-Cache (lens.cache).
    app.use(middlewares=[common_headers, cache.header_middleware])
    return app


def _decorate(response: Response[str], cors: EchoCORSConfig) -> None:
    """Vary: Origin (and CORS for an allowed origin) and X-Request-Id on every answer."""
    for key, value in cors_headers(cors, current().origin).items():
        response.headers.setdefault(key, value)
    response.headers.setdefault("X-Request-Id", current().request_id)


def _install_error_handlers(
    app: ApiGatewayResolver, cors: EchoCORSConfig, routers: Routers
) -> None:
    def answer(error: ApiError, headers: dict[str, str] | None = None) -> Response[str]:
        response = error_response(error, headers)
        _decorate(response, cors)
        return response

    def on_api_error(exc: ApiError) -> Response[str]:
        return answer(exc)

    def on_validation_error(exc: RequestValidationError) -> Response[str]:
        return answer(from_validation_errors(exc.errors()))

    def on_content_type(exc: RequestUnsupportedContentType) -> Response[str]:
        return answer(ApiError(415, "unsupported_media_type", "Send JSON or the raw image bytes."))

    def on_not_found(exc: NotFoundError) -> Response[str]:
        # Powertools answers 404 for a known path with another method; the methods that
        # path does accept make it a 405 with an Allow header. No strip_prefixes is
        # configured, so the event's path is the path Powertools matched against.
        path = app.current_event.path
        methods = allowed_methods(routers, path)
        if methods and app.current_event.http_method.upper() not in methods:
            allow = ", ".join([*methods, "OPTIONS"])
            return answer(
                ApiError(
                    405,
                    "method_not_allowed",
                    f"This path does not accept that method; use {allow}.",
                ),
                {"Allow": allow},
            )
        return answer(ApiError(404, "not_found", "There is nothing at this path."))

    def on_unexpected(exc: Exception) -> Response[str]:
        logger.exception("unexpected error")
        return answer(internal_error())

    app.exception_handler(ApiError)(on_api_error)
    app.exception_handler(RequestValidationError)(on_validation_error)
    app.exception_handler(RequestUnsupportedContentType)(on_content_type)
    app.exception_handler(NotFoundError)(on_not_found)
    app.exception_handler(Exception)(on_unexpected)


_cache: dict[tuple[EventKind, Routers], ApiGatewayResolver] = {}


def get_resolver(kind: EventKind, routers: Routers) -> ApiGatewayResolver:
    """The process's resolver for `kind` events over `routers` (built on first use)."""
    key = (kind, routers)
    if key not in _cache:
        _cache[key] = build_resolver(kind, routers)
    return _cache[key]


def reset_resolvers() -> None:
    """Forget built resolvers (after a settings change)."""
    _cache.clear()
