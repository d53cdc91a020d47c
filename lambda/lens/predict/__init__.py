"""Offline models served by the same function: registry, preprocessing, routes."""

from __future__ import annotations

from lens.predict.loader import current_store


def loaded_models() -> list[str]:
    """Names of the models loaded in this container so far (for GET /health)."""
    current = current_store()
    return current.loaded_names() if current is not None else []
