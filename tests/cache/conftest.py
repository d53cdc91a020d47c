"""Fixtures for the response cache's tests: the function's clean settings (tests/function)
and the offline models' handler calls (tests/predict), plus a clock the tests move."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from lens import cache

from tests.deploy.conftest import _fast_retries, project, run_deploy
from tests.function.conftest import invoke, lens_env
from tests.predict.conftest import cache_dir, call

__all__ = ["_fast_retries", "cache_dir", "call", "invoke", "lens_env", "project", "run_deploy"]


@dataclass
class Clock:
    """Epoch seconds that move only when a test says so."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Iterator[Clock]:
    """The cache's clock for this test (the cache is rebuilt on first use)."""
    fake = Clock()
    cache.reset_cache(clock=fake)
    yield fake
    cache.reset_cache()
