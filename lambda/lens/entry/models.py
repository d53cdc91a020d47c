"""The `models` function: GET /models, POST /predict/{model_id}, GET /forecast/{model_id}
(offline ONNX models) and GET /stats (the prediction log's aggregates).

Importing it never imports google-genai (its artifact does not ship it).
"""

from __future__ import annotations

from lens import snapstart
from lens.function import LensFunction
from lens.predict.routes import router as predict_router
from lens.stats import router as stats_router

function = LensFunction("models", (predict_router, stats_router))
lambda_handler = function.lambda_handler
# SnapStart on: the first request's expensive work now, in init (lens.snapstart).
snapstart.prime(models=True)
