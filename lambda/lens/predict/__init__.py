"""Offline models served by the same function: registry, preprocessing, routes."""

from __future__ import annotations

import sys


def loaded_models() -> list[str]:
    """Names of the models loaded in this container so far (for GET /health).

    Only lens.predict.loader loads models, so while it was never imported none is loaded:
    the analyze function's /health then builds no registry models (pydantic) to say so.
    """
    if "lens.predict.loader" not in sys.modules:
        return []
    from lens.predict.loader import current_store

    current = current_store()
    return current.loaded_names() if current is not None else []
