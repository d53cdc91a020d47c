"""`scarab logs`: the function's CloudWatch log events, optionally followed."""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Iterator
from pathlib import Path

from scarab.aws import Aws, aws_errors
from scarab.config import ScarabConfig
from scarab.errors import ConfigError
from scarab.functions import ALL_ROUTES_NAME, FUNCTIONS
from scarab.stage import open_stage

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_SINCE_S = 36500 * 86400  # a hundred years: "everything"


def parse_since(text: str) -> float:
    """'10m', '2h', '30s', '1d' -> seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not m:
        raise ConfigError(f"--since {text!r}: use a number and a unit, such as 30s, 10m, 2h, 1d.")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > _MAX_SINCE_S:  # a date before year 1 is an OverflowError, not a range
        raise ConfigError(f"--since {text!r}: at most {_MAX_SINCE_S // 86400}d.")
    return seconds


def tail(
    config: ScarabConfig,
    *,
    project_dir: Path,
    since: str = "10m",
    follow: bool = False,
    endpoint_url: str | None = None,
    aws: Aws | None = None,
    poll: float = 2.0,
    function: str = "analyze",
) -> Iterator[str]:
    """Yield formatted log lines of `function` (analyze or models) from `since` ago;
    with `follow`, keep polling."""
    st = open_stage(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)
    # `all`: the single function of a stage deployed before the split (its logs stay
    # after the move, until destroy).
    known = [f.name for f in FUNCTIONS] + [ALL_ROUTES_NAME]
    if function not in known:
        raise ConfigError(
            f"--function {function!r}: use {', '.join(known[:-1])}, or {known[-1]} for the"
            " single function of a stage deployed before the split."
        )
    group = st.names.function(function).log_group
    logs = st.aws.client("logs")
    start = int((time.time() - parse_since(since)) * 1000)
    # Ids already printed, by timestamp: the next poll starts at the newest timestamp seen
    # (inclusive), so only ids at or after it can come back; older ones are forgotten.
    seen: dict[str, int] = {}
    missing = f"No log group {group}; deploy the stage first."
    if function != ALL_ROUTES_NAME:
        missing += (
            f" (A stage not moved to its functions yet logs to {st.names.legacy.log_group}:"
            f" --function {ALL_ROUTES_NAME}.)"
        )
    while True:
        with aws_errors({"ResourceNotFoundException": missing}):
            kwargs = {"logGroupName": group, "startTime": start}
            for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
                for event in page.get("events", []):
                    if event["eventId"] in seen:
                        continue
                    seen[event["eventId"]] = int(event["timestamp"])
                    start = max(start, int(event["timestamp"]))
                    ts = datetime.datetime.fromtimestamp(event["timestamp"] / 1000, datetime.UTC)
                    yield f"{ts:%H:%M:%S} {event['message'].rstrip()}"
        if not follow:
            return
        seen = {event_id: ts for event_id, ts in seen.items() if ts >= start}
        time.sleep(poll)
