"""Review 9: SCARAB_REGISTRY_TTL_S values that are not a finite number of seconds fall
back to the default (60 s) like other garbage, instead of a cache that never refreshes
(float() reads "inf" and "1e400" as infinity: a push or promote would never be served)."""

from __future__ import annotations

import pytest
from lens.predict import sources

from tests.predict.test_registry_table import (
    Registry,
    _to_onnx,
    _versions,
    classifiers,
    data,
    table,
)

__all__ = ["classifiers", "data", "table"]  # fixtures

pytestmark = pytest.mark.emulator


@pytest.mark.parametrize("ttl", ["inf", "1e400", "Infinity", "nan", "-5", "soon"])
def test_a_ttl_that_is_not_finite_seconds_is_the_default(
    table: Registry, classifiers: list[object], monkeypatch: pytest.MonkeyPatch, ttl: str
) -> None:
    monkeypatch.setenv(sources.TTL_ENV, ttl)
    sources.reset(clock=table.clock)  # re-read the environment
    table.push("churn", "1", _to_onnx(classifiers[0]), labels=["0", "1"])
    table.push("churn", "2", _to_onnx(classifiers[1]), labels=["0", "1"])
    table.aliases("churn", live="1")
    assert set(_versions(3)) == {"1"}
    table.aliases("churn", live="2")  # promote
    table.clock.advance(sources.DEFAULT_TTL_S + 1)
    assert set(_versions(3)) == {"2"}, f"{sources.TTL_ENV}={ttl}: served after the default TTL"


def test_zero_reads_the_table_every_request(
    table: Registry, classifiers: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sources.TTL_ENV, "0")
    sources.reset(clock=table.clock)
    table.push("churn", "1", _to_onnx(classifiers[0]), labels=["0", "1"])
    table.push("churn", "2", _to_onnx(classifiers[1]), labels=["0", "1"])
    table.aliases("churn", live="1")
    assert set(_versions(2)) == {"1"}
    table.aliases("churn", live="2")
    assert set(_versions(2)) == {"2"}  # no clock step needed
