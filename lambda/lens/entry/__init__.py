"""Per-function entry points: each module registers only its function's routes.

lens.entry.analyze.lambda_handler (Gemini) and lens.entry.models.lambda_handler
(offline ONNX models); scarab's function catalog (tooling/scarab/functions.py) names
them, and tests/function/test_functions.py checks the two agree.
"""
