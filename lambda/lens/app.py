"""Resolvers for the three event shapes, sharing one set of routes and error handling.

REST (payload 1.0), HTTP API (2.0) and Function URL (2.0) events each get their own
Powertools resolver, built on first use, with validation, echoing CORS and the same
exception handlers: ApiError, validation errors (400/422), 404/405, anything else -> 500.
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

from lens.cors import EchoCORSConfig, cors_headers
from lens.errors import ApiError
from lens.intake import EventKind, parse_json
from lens.invocation import current
from lens.observability import logger
from lens.predict.routes import router as predict_router
from lens.responses import error_response, from_validation_errors, internal_error
from lens.routes import router
from lens.settings import get_settings

_RESOLVERS: dict[str, type[ApiGatewayResolver]] = {
    "rest": APIGatewayRestResolver,
    "http": APIGatewayHttpResolver,
    "url": LambdaFunctionUrlResolver,
}


def build_resolver(kind: EventKind) -> ApiGatewayResolver:
    """A resolver for `kind` events with every route, CORS and the error handlers."""
    cors = EchoCORSConfig(get_settings().allowed_origins)
    # parse_json: a body too deep or with a too-long number is 400 malformed_json, not 500.
    app = _RESOLVERS[kind](cors=cors, enable_validation=True, json_body_deserializer=parse_json)
    app.include_router(router)
    app.include_router(predict_router)
    _install_error_handlers(app, cors)

    def common_headers(app: ApiGatewayResolver, next_middleware: NextMiddleware) -> Response[str]:
        response = next_middleware(app)
        _decorate(response, cors)
        return response

    app.use(middlewares=[common_headers])
    return app


def _decorate(response: Response[str], cors: EchoCORSConfig) -> None:
    """Vary: Origin (and CORS for an allowed origin) and X-Request-Id on every answer."""
    for key, value in cors_headers(cors, current().origin).items():
        response.headers.setdefault(key, value)
    response.headers.setdefault("X-Request-Id", current().request_id)


def _allowed_methods(app: ApiGatewayResolver, path: str) -> list[str]:
    # Powertools answers 404 for a known path with another method; find the methods that
    # path does accept so the answer can be 405 with an Allow header.
    routes = app._static_routes + app._dynamic_routes
    return sorted({r.method for r in routes if r.rule.match(path)})


def _install_error_handlers(app: ApiGatewayResolver, cors: EchoCORSConfig) -> None:
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
        path = str(app.context.get("_path") or "")
        methods = _allowed_methods(app, path)
        if methods:
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


_cache: dict[str, ApiGatewayResolver] = {}


def get_resolver(kind: EventKind) -> ApiGatewayResolver:
    """The process's resolver for `kind` (built on first use)."""
    if kind not in _cache:
        _cache[kind] = build_resolver(kind)
    return _cache[kind]


def reset_resolvers() -> None:
    """Forget built resolvers (after a settings change)."""
    _cache.clear()
