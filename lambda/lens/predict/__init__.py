"""Offline models served by the same function: registry, preprocessing, routes."""

from __future__ import annotations


def loaded_models() -> list[str]:
    """Names of the models loaded in this container so far (for GET /health)."""
    return []
