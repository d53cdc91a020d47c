"""The `models` function: GET /models, POST /predict/{model_id} (offline ONNX models).

Importing it never imports google-genai (its artifact does not ship it).
"""

from __future__ import annotations

from lens.function import LensFunction
from lens.predict.routes import router as predict_router

function = LensFunction("models", (predict_router,))
lambda_handler = function.lambda_handler
