"""Waiting for AWS to finish what it started: read-only polls, no changes."""

from __future__ import annotations

import time
from typing import Any

from scarab.aws import Aws, call
from scarab.errors import ScarabError

# A SageMaker endpoint on its way somewhere; anything else has arrived (or failed).
ENDPOINT_BUSY = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


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


def endpoint_arrived(description: dict[str, Any], config: str) -> bool:
    """Whether DescribeEndpoint's answer says the endpoint serves `config` (True), is
    still on its way (False), or failed (ScarabError with SageMaker's reason: a failed
    create, or an update SageMaker rolled back to the configuration it had)."""
    name = description.get("EndpointName", "the endpoint")
    status = str(description.get("EndpointStatus", ""))
    reason = description.get("FailureReason") or "SageMaker gave no reason"
    if status in ENDPOINT_BUSY:
        return False
    if status == "InService" and description.get("EndpointConfigName") == config:
        return True
    if status == "InService":
        raise ScarabError(
            f"SageMaker rolled the endpoint {name} back to"
            f" {description.get('EndpointConfigName')} instead of {config}: {reason}"
        )
    if status == "Failed":
        raise ScarabError(
            f"The SageMaker endpoint {name} failed: {reason}. SageMaker cannot update a failed"
            " endpoint: fix the cause, run 'scarab destroy --target sagemaker --yes', then"
            " deploy again."
        )
    raise ScarabError(
        f"The SageMaker endpoint {name} is {status or 'in no state'}; wait until it is"
        " InService (or gone) and re-run."
    )


def wait_for_endpoint(aws: Aws, name: str, config: str, timeout: float = 1800.0) -> None:
    """Wait until the endpoint is InService on `config` (a serverless endpoint takes a
    few minutes to create or update); at most `timeout` seconds."""
    sm = aws.client("sagemaker")
    deadline = time.monotonic() + timeout
    delay = 1.0
    while not endpoint_arrived(call(sm.describe_endpoint, EndpointName=name), config):
        if time.monotonic() > deadline:
            raise ScarabError(
                f"The SageMaker endpoint {name} is not InService on {config} after"
                f" {timeout:.0f}s; check it in the console and re-run the deploy."
            )
        time.sleep(delay)
        delay = min(delay * 2, 15.0)
