"""Evaluate the stage's CloudWatch alarms over serve's local metrics, every second.

A daemon thread reads the alarms named `<app>-<stage>-...` from the emulator's CloudWatch
(DescribeAlarms), evaluates each with `scarab.serve.alarms.evaluate` over the
`MetricStore` the gateway fills, and records every change of state with SetAlarmState,
so `describe_alarms` (what `scarab alarms` and a canary's bake read) shows it. Only
alarms on metrics this serve produces are evaluated: an AWS/Lambda alarm on one of the
functions it runs, an AWS/ApiGateway alarm on its API (and stage); the others are left
as they are.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from scarab.serve.alarms import (
    AlarmSpec,
    Samples,
    UnsupportedAlarm,
    evaluate,
    parse_alarm,
    reason_data,
)
from scarab.serve.metrics import API_NAMESPACE, LAMBDA_NAMESPACE, MetricStore
from scarab.serve.snapshot import Snapshot

log = logging.getLogger("scarab.serve")

DEFAULT_INTERVAL_S = 1.0


def alarm_prefix(app: str, stage: str) -> str:
    return f"{app}-{stage}-"


def in_scope(spec: AlarmSpec, snapshot: Snapshot) -> bool:
    """Whether `spec` watches a metric this serve produces for `snapshot`'s stage."""
    if spec.namespace == LAMBDA_NAMESPACE:
        names = {fn.name for fn in snapshot.configs()}
        return spec.dimension("FunctionName") in names
    if spec.namespace == API_NAMESPACE:
        stage = spec.dimension("Stage")
        api = snapshot.api_name or snapshot.rest_api_id
        return spec.dimension("ApiName") == api and stage in (None, snapshot.stage)
    return False


def evaluate_all(
    cloudwatch: Any,
    prefix: str,
    metrics: MetricStore,
    snapshot: Snapshot,
    now: float,
    warned: set[str] | None = None,
) -> dict[str, str]:
    """One round: read, evaluate, record changes. Returns the alarms changed -> new state."""
    changed: dict[str, str] = {}
    for raw in _alarms(cloudwatch, prefix):
        try:
            spec = parse_alarm(raw)
        except UnsupportedAlarm as exc:
            if warned is not None and exc.args[0] not in warned:
                warned.add(exc.args[0])
                log.warning("alarm not evaluated locally: %s", exc)
            continue
        if not in_scope(spec, snapshot):
            continue
        result = evaluate(spec, _series(metrics, spec), now)
        if result.state == spec.state:
            continue
        cloudwatch.set_alarm_state(
            AlarmName=spec.name,
            StateValue=result.state,
            StateReason=result.reason[:1023],
            StateReasonData=json.dumps(reason_data(spec, result, now)),
        )
        log.warning("alarm %s: %s -> %s: %s", spec.name, spec.state, result.state, result.reason)
        changed[spec.name] = result.state
    return changed


def _series(metrics: MetricStore, spec: AlarmSpec) -> Samples:
    def samples(start: float, end: float) -> list[tuple[float, float]]:
        return metrics.samples(spec.namespace, spec.metric, spec.dimensions, start, end)

    return samples


def _alarms(cloudwatch: Any, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token = None
    while True:
        page = cloudwatch.describe_alarms(
            AlarmNamePrefix=prefix,
            AlarmTypes=["MetricAlarm"],
            **({"NextToken": token} if token else {}),
        )
        out.extend(page.get("MetricAlarms") or [])
        token = page.get("NextToken")
        if not token:
            return out


class AlarmWatcher:
    """The evaluation thread (started and stopped with serve)."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        prefix: str,
        metrics: MetricStore,
        snapshot: Callable[[], Snapshot | None],
        interval: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from scarab.emulator import emulator_session

        config = Config(connect_timeout=3, read_timeout=15, retries={"max_attempts": 2})
        self._cloudwatch = emulator_session(region).client(
            "cloudwatch", endpoint_url=endpoint_url, config=config
        )
        self.prefix = prefix
        self.metrics = metrics
        self.snapshot = snapshot
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self._failing = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scarab-serve-alarms", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def round(self) -> dict[str, str]:
        snapshot = self.snapshot()
        if snapshot is None:
            return {}
        return evaluate_all(
            self._cloudwatch, self.prefix, self.metrics, snapshot, self.clock(), self._warned
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.round()
            except (ClientError, BotoCoreError) as exc:
                if not self._failing:
                    log.warning("alarms not evaluated: the emulator's CloudWatch failed (%s)", exc)
                self._failing = True
            except Exception:  # never let the evaluator die silently
                log.exception("evaluating the stage's alarms failed")
                self._failing = True
            else:
                self._failing = False
