"""The all-routes entry point: lens.handler.lambda_handler (task root lambda/).

Every route in one function: what a stage deployed as a single function runs, the
container image's CMD, and what the tests and `scarab serve` call by default. A stage
split into functions runs lens.entry.analyze and lens.entry.models instead.
"""

from __future__ import annotations

from lens import snapstart
from lens.function import LensFunction
from lens.jobs.routes import router as jobs_router
from lens.openapi import router as openapi_router
from lens.predict.routes import router as predict_router
from lens.routes import router as analysis_router
from lens.stats import router as stats_router
from lens.uploads.routes import router as uploads_router

function = LensFunction(
    "all",
    (
        analysis_router,
        openapi_router,
        predict_router,
        stats_router,
        uploads_router,
        jobs_router,
    ),
)
lambda_handler = function.lambda_handler
# SnapStart on: the first request's expensive work now, in init (lens.snapstart).
snapstart.prime(gemini=True, models=True)
