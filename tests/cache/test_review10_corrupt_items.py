"""A foreign or corrupt item in the shared table (not JSON, not an object, an object
without the answer's fields) is a miss that is computed afresh, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from lens import cache
from lens.settings import CACHE_TABLE_ENV, CACHE_TTL_ENV

from tests.cache.conftest import Clock
from tests.cache.test_function import _features
from tests.cache.test_shared import TABLE, analyze_once, table  # noqa: F401 (fixture)
from tests.function.events import b64, jpeg
from tests.predict.conftest import Call
from tests.support.gemini_server import SAMPLE_ANALYSIS, GeminiServer
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator
Invoke = Callable[..., dict[str, Any]]


def _overwrite_every_item(aws: MotoServer, value: str) -> int:
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=aws.url)
    items = ddb.scan(TableName=TABLE)["Items"]
    for item in items:
        ddb.put_item(TableName=TABLE, Item={**item, "value": {"S": value}})
    return len(items)


@pytest.mark.parametrize(
    "value", ["not json {", "[1, 2]", "{}", '{"analysis": 1, "model": 2, "usage": 3}']
)
def test_a_corrupt_analyze_item_is_a_miss_not_a_500(
    value: str,
    table: str,  # noqa: F811
    aws: MotoServer,
    gemini: GeminiServer,
    invoke: Invoke,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CACHE_TTL_ENV, "300")
    monkeypatch.setenv(CACHE_TABLE_ENV, table)
    body = {"image": b64(jpeg()), "speed": "fast", "imageType": "tomb"}

    def analyze() -> tuple[int, Any, dict[str, str]]:
        return analyze_once(invoke, body)

    status, _, headers = analyze()
    assert status == 200 and headers["x-cache"] == "miss"
    assert _overwrite_every_item(aws, value) >= 1
    cache.reset_cache(clock=clock)  # a new container: only the table knows the answer
    status, second, headers = analyze()
    assert status == 200, second
    assert headers["x-cache"] == "miss"
    assert second["analysis"] == SAMPLE_ANALYSIS
    assert len(gemini.requests) == 2


@pytest.mark.parametrize("value", ["not json {", "[1]", "{}", '{"model_version": "0"}'])
def test_a_corrupt_prediction_item_is_a_miss_not_a_500_or_a_wrong_answer(
    value: str,
    table: str,  # noqa: F811
    aws: MotoServer,
    call: Call,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CACHE_TTL_ENV, "300")
    monkeypatch.setenv(CACHE_TABLE_ENV, table)
    features = {"features": _features(0)}
    status, first, headers = call("POST", "/predict/tabular", features)
    assert status == 200 and headers["x-cache"] == "miss", first
    assert _overwrite_every_item(aws, value) >= 1
    cache.reset_cache(clock=clock)
    status, second, headers = call("POST", "/predict/tabular", features)
    assert status == 200, second
    assert headers["x-cache"] == "miss"
    assert second == first
