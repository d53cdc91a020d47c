"""The shared level: one DynamoDB table per stage (`<app>-<stage>-cache`), read by every
container of every function (GetItem and PutItem only: that is all the role may do).

An item is {key (S, the partition key), value (S, the answer's JSON), expires_at (N,
epoch seconds: the table's TTL attribute)}. DynamoDB deletes expired items only
eventually (typically within days), so a read checks `expires_at` itself.

A failing table never fails or slows a request for long: short timeouts, and an error
is logged, counted (EMF metric CacheErrors) and treated as a miss. boto3 is imported on
first use (the Lambda runtime ships it; it is in neither zip).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from lens.observability import logger, metrics

KEY_ATTR = "key"
VALUE_ATTR = "value"
EXPIRES_ATTR = "expires_at"  # the table's TTL attribute (the deploy enables TTL on it)
# DynamoDB refuses items over 400 KB (attribute names and values, UTF-8 bytes; a number
# takes at most 21). Such an answer is not stored in the table (the in-process level may
# still keep it): a PutItem would fail on every request that produced it. 400,000 bytes:
# under the limit whether "KB" is read as 1000 or 1024 (measured at 409-410 KB).
ITEM_LIMIT_BYTES = 400_000
_NUMBER_BYTES = 21


def item_size(key: str, value: str) -> int:
    """The size DynamoDB counts for the item holding `value` under `key`."""
    names = len(KEY_ATTR) + len(VALUE_ATTR) + len(EXPIRES_ATTR)
    return names + len(key.encode("utf-8")) + len(value.encode("utf-8")) + _NUMBER_BYTES


def fits(key: str, value: str) -> bool:
    """Whether the item is within DynamoDB's item size limit."""
    return item_size(key, value) <= ITEM_LIMIT_BYTES


def _client() -> Any:
    import boto3
    from botocore.config import Config

    # A cache read sits in front of every request: give up quickly rather than wait.
    config = Config(
        connect_timeout=1, read_timeout=1, retries={"max_attempts": 2, "mode": "standard"}
    )
    return boto3.client("dynamodb", config=config)


class SharedCache:
    """GetItem / PutItem on `table`; `clock` gives epoch seconds (time.time)."""

    def __init__(
        self,
        table: str,
        clock: Callable[[], float] = time.time,
        client: Callable[[], Any] = _client,
    ) -> None:
        self.table = table
        self.clock = clock
        self._make_client = client
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def drop_client(self) -> None:
        """Forget the client (and its pooled connections): the next call makes one."""
        self._client = None

    def get(self, key: str) -> tuple[str, float] | None:
        """(value, expires_at) of a live item; None when missing, expired or unreadable."""
        try:
            got = self.client().get_item(TableName=self.table, Key={KEY_ATTR: {"S": key}})
        except Exception as exc:  # boto errors, throttling, no table, no permission
            self._failed("read", exc)
            return None
        item = got.get("Item") or {}
        value = item.get(VALUE_ATTR, {}).get("S")
        try:
            expires_at = float(item.get(EXPIRES_ATTR, {}).get("N", "0"))
        except ValueError:
            return None
        if not isinstance(value, str) or expires_at <= self.clock():
            return None
        return value, expires_at

    def put(self, key: str, value: str, expires_at: float) -> bool:
        """Store the item; False when it is over the item limit or the write failed."""
        if not fits(key, value):
            logger.info(
                "answer not cached in the table: over DynamoDB's item limit",
                extra={"bytes": item_size(key, value), "limit": ITEM_LIMIT_BYTES},
            )
            return False
        item = {
            KEY_ATTR: {"S": key},
            VALUE_ATTR: {"S": value},
            # Whole seconds, rounded down: an item never outlives its TTL.
            EXPIRES_ATTR: {"N": str(int(expires_at))},
        }
        try:
            self.client().put_item(TableName=self.table, Item=item)
        except Exception as exc:
            self._failed("write", exc)
            return False
        return True

    def _failed(self, what: str, exc: Exception) -> None:
        logger.warning(
            f"cache table {what} failed; answering without it",
            extra={"table": self.table, "error": f"{type(exc).__name__}: {str(exc)[:300]}"},
        )
        metrics.add_metric(name="CacheErrors", unit=MetricUnit.Count, value=1)
