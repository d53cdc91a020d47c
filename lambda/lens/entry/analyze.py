"""The `analyze` function: POST /analyze, GET /health, GET /openapi.json.

Importing it never imports numpy or onnxruntime (its artifact ships neither).
"""

from __future__ import annotations

from lens import snapstart
from lens.function import LensFunction
from lens.jobs.routes import router as jobs_router
from lens.openapi import router as openapi_router
from lens.routes import router as analysis_router
from lens.uploads.routes import router as uploads_router

function = LensFunction("analyze", (analysis_router, openapi_router, uploads_router, jobs_router))
lambda_handler = function.lambda_handler
# SnapStart on: the first request's expensive work now, in init (lens.snapstart).
snapstart.prime(gemini=True)
