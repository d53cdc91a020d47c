"""GET /openapi.json: the OpenAPI document of the whole API, generated from the routes.

The document describes every route of the stage, whichever function serves it, so it
is built from the routers of every function (declaring them imports no model runtime:
lens.predict.routes loads numpy and onnxruntime only when a prediction runs).
"""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.event_handler import Response, content_types

import lens
from lens.routing import LensRouter

router = LensRouter()


@router.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=openapi_json(),
    )


def api_routers() -> tuple[LensRouter, ...]:
    """Every router of the API, in the order the document lists them."""
    from lens.jobs.routes import router as jobs_router
    from lens.predict.routes import router as predict_router
    from lens.routes import router as analysis_router
    from lens.stats import router as stats_router
    from lens.uploads.routes import router as uploads_router

    return (analysis_router, router, predict_router, stats_router, uploads_router, jobs_router)


@lru_cache(maxsize=1)
def openapi_json() -> str:
    """The OpenAPI document (built once per container from a resolver with every route)."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

    from lens.app import build_resolver

    app = build_resolver("rest", api_routers())
    return app.get_openapi_json_schema(
        title="Scarab",
        version=lens.__version__,
        description="Analyze photos of ancient Egyptian art with Gemini, and run small "
        "offline models.",
        security_schemes={
            "apiKey": APIKey.model_validate({"name": "X-Api-Key", "in": APIKeyIn.header})
        },
        security=[{"apiKey": []}],
    )
