"""The shared level against DynamoDB (the moto server): items round-trip with their
expiry, an expired item DynamoDB has not deleted yet is a miss, an answer over the
400 KB item limit is not stored, and a table that fails never fails the request; two
containers (two caches built afresh) share answers through it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from lens import cache
from lens.cache import ResponseCache
from lens.cache.shared import ITEM_LIMIT_BYTES, SharedCache, fits, item_size
from lens.settings import CACHE_TABLE_ENV, CACHE_TTL_ENV
from scarab.deploy.planner_cache import TABLE_KEY

from tests.cache.conftest import Clock
from tests.function.events import b64, jpeg, response_headers, response_json, rest_event
from tests.support.gemini_server import GeminiServer
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator

TABLE = "scarab-dev-cache"


@pytest.fixture
def table(aws: MotoServer) -> str:
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=aws.url)
    ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST", **TABLE_KEY)
    return TABLE


def _raw_item(aws: MotoServer, key: str) -> dict[str, Any] | None:
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=aws.url)
    return ddb.get_item(TableName=TABLE, Key={"key": {"S": key}}).get("Item")


def test_an_item_round_trips_with_its_expiry(table: str, aws: MotoServer) -> None:
    clock = Clock()
    shared = SharedCache(table, clock)
    assert shared.get("analyze:abc") is None
    assert shared.put("analyze:abc", '{"a":1}', clock.now + 300.7)
    assert shared.get("analyze:abc") == ('{"a":1}', int(clock.now + 300.7))
    item = _raw_item(aws, "analyze:abc")
    assert item is not None and item["expires_at"] == {"N": str(int(clock.now + 300.7))}


def test_an_expired_item_is_a_miss_though_still_in_the_table(table: str, aws: MotoServer) -> None:
    clock = Clock()
    shared = SharedCache(table, clock)
    shared.put("k", "v", clock.now + 10)
    clock.advance(10)
    assert shared.get("k") is None
    assert _raw_item(aws, "k") is not None  # DynamoDB's TTL deletes it only eventually


def test_an_answer_over_the_item_limit_is_not_stored(table: str, aws: MotoServer) -> None:
    clock = Clock()
    shared = SharedCache(table, clock)
    key = "analyze:big"
    fill = ITEM_LIMIT_BYTES - item_size(key, "")
    assert fits(key, "x" * fill) and not fits(key, "x" * (fill + 1))
    assert not shared.put(key, "é" * (fill // 2 + 1), clock.now + 60)  # UTF-8 bytes count
    assert _raw_item(aws, key) is None
    # The limit is real: DynamoDB refuses an item past it (410 KiB: over every reading).
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=aws.url)
    too_big = {"key": {"S": key}, "value": {"S": "x" * (410 * 1024)}}
    with pytest.raises(ddb.exceptions.ClientError):
        ddb.put_item(TableName=TABLE, Item=too_big)
    # Just under it is stored.
    assert shared.put(key, "x" * (fill - 100), clock.now + 60)
    assert shared.get(key) is not None


def test_a_missing_table_is_a_miss_not_an_error(aws: MotoServer) -> None:
    shared = SharedCache("no-such-table", Clock())
    assert shared.get("k") is None
    assert not shared.put("k", "v", Clock().now + 60)


def test_a_value_found_in_the_table_is_kept_in_memory_until_the_item_expires(
    table: str,
) -> None:
    clock = Clock()
    writer = ResponseCache(300, SharedCache(table, clock), clock=clock)
    writer.store("k", "v")
    reader = ResponseCache(300, SharedCache(table, clock), clock=clock)
    clock.advance(200)
    assert reader.fetch("k") == "v"
    assert reader.memory.get("k") is not None
    clock.advance(100)
    assert reader.memory.get("k") is None and reader.fetch("k") is None


Invoke = Callable[..., dict[str, Any]]


def analyze_once(
    invoke: Callable[..., dict[str, Any]], body: dict[str, Any]
) -> tuple[int, Any, dict[str, str]]:
    """POST /analyze with `body` through the handler: status, JSON body, headers."""
    event = rest_event(body=body, headers={"Content-Type": "application/json"})
    response = invoke(event)
    return response["statusCode"], response_json(response), response_headers(response)


def test_a_second_container_answers_from_the_table_with_no_gemini_call(
    table: str,
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

    status, first, headers = analyze()
    assert status == 200 and headers["x-cache"] == "miss"
    cache.reset_cache(clock=clock)  # a new container: nothing in memory
    status, second, headers = analyze()
    assert status == 200 and headers["x-cache"] == "hit", second
    assert second["analysis"] == first["analysis"]
    assert len(gemini.requests) == 1
