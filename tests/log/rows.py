"""Rows for the prediction log's tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def sample_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "at": datetime(2026, 12, 1, 10, 15, 30, 123456),
        "stage": "dev",
        "request_id": "r-1",
        "route": "/predict/{model_id}",
        "model": "digits",
        "model_version": "1",
        "input_digest": "0" * 64,
        "input": None,
        "output": '{"label": 5}',
        "latency_ms": 12.5,
        "status": 200,
        "error_code": None,
        "tokens_in": None,
        "tokens_out": None,
        "cache": None,
    }
    row.update(changes)
    return row
