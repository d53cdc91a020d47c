"""Waiting for AWS to finish what it started: read-only polls, no changes."""

from __future__ import annotations

import time

from scarab.aws import Aws, call
from scarab.errors import ScarabError


def wait_for_function(aws: Aws, name: str, timeout: float = 300.0) -> None:
    """Wait until the function is Active and no update is in progress."""
    lam = aws.client("lambda")
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        cfg = call(lam.get_function_configuration, FunctionName=name)
        state = cfg.get("State", "Active")
        update = cfg.get("LastUpdateStatus", "Successful")
        if state == "Failed" or update == "Failed":
            reason = cfg.get("StateReason") or cfg.get("LastUpdateStatusReason") or "unknown"
            raise ScarabError(f"Lambda reports the function {name} failed: {reason}")
        if state != "Pending" and update != "InProgress":
            return
        if time.monotonic() > deadline:
            raise ScarabError(
                f"The function {name} is still updating after {timeout:.0f}s; re-run the"
                " deploy in a minute."
            )
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def wait_for_table(aws: Aws, name: str, timeout: float = 300.0) -> None:
    """Wait until the DynamoDB table is ACTIVE (a new table takes seconds)."""
    ddb = aws.client("dynamodb")
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        status = call(ddb.describe_table, TableName=name)["Table"].get("TableStatus", "ACTIVE")
        if status == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise ScarabError(
                f"The table {name} is still {status} after {timeout:.0f}s; re-run the deploy"
                " in a minute."
            )
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
