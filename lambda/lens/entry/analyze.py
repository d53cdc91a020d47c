"""The `analyze` function: POST /analyze, GET /health, GET /openapi.json.

Importing it never imports numpy or onnxruntime (its artifact ships neither).
"""

from __future__ import annotations

from lens import snapstart
from lens.function import LensFunction
from lens.openapi import router as openapi_router
from lens.routes import router as analysis_router

function = LensFunction("analyze", (analysis_router, openapi_router))
lambda_handler = function.lambda_handler
# SnapStart on: the first request's expensive work now, in init (lens.snapstart).
snapstart.prime(gemini=True)
