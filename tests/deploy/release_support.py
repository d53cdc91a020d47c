"""Versions and a `live` alias made with boto3 on a function a real deploy created (until
deploy publishes them itself), and the alias as the tests read it back."""

from __future__ import annotations

import contextlib
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from typing import Any

from scarab.deploy.planner_versions import version_description

from tests.deploy.conftest import ANALYZE, MODELS, client
from tests.support.moto_server import MotoServer


def _code(n: int) -> bytes:
    """A small zip whose bytes (and so CodeSha256) differ for each `n`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("lens/__init__.py", f"VERSION = {n}\n")
    return buf.getvalue()


def publish(aws: MotoServer, count: int, function: str = ANALYZE) -> list[dict[str, Any]]:
    """Publish `count` versions of `function`, each with its own code and a commit in its
    description; returns PublishVersion's answers."""
    lam = client("lambda", aws)
    out = []
    for n in range(1, count + 1):
        lam.update_function_code(FunctionName=function, ZipFile=_code(n))
        about = version_description(f"code{n}", f"config{n}", f"c0ffee{n}", "test")
        out.append(lam.publish_version(FunctionName=function, Description=about))
    return out


def make_live(
    aws: MotoServer, version: str, weights: dict[str, float] | None = None, function: str = ANALYZE
) -> None:
    """Point the `live` alias at `version` (with a RoutingConfig when `weights`), creating
    it unless the deploy did."""
    lam = client("lambda", aws)
    routing = {"AdditionalVersionWeights": weights or {}}
    try:
        lam.get_alias(FunctionName=function, Name="live")
    except lam.exceptions.ResourceNotFoundException:
        lam.create_alias(
            FunctionName=function, Name="live", FunctionVersion=version, RoutingConfig=routing
        )
    else:
        lam.update_alias(
            FunctionName=function, Name="live", FunctionVersion=version, RoutingConfig=routing
        )


def without_versions(aws: MotoServer, *functions: str) -> None:
    """Remove the `live` alias and the versions a deploy published (once deploy publishes
    them), so that a test's own versions are numbered from 1 on moto, which numbers a
    function's next version after the ones it still has."""
    lam = client("lambda", aws)
    for function in functions:
        with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
            lam.delete_alias(FunctionName=function, Name="live")
        for v in lam.list_versions_by_function(FunctionName=function)["Versions"]:
            if v["Version"] != "$LATEST":
                lam.delete_function(FunctionName=function, Qualifier=v["Version"])


def alias(aws: MotoServer, function: str = ANALYZE) -> tuple[str, dict[str, float]]:
    """(version, additional version weights) of `function`'s `live` alias."""
    got = client("lambda", aws).get_alias(FunctionName=function, Name="live")
    weights = (got.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return got["FunctionVersion"], dict(weights)


def deployed(run_deploy: Any, aws: MotoServer) -> None:
    """A real deploy, with the `live` alias and versions it made (if any) removed."""
    run_deploy()
    without_versions(aws, ANALYZE, MODELS)


@contextlib.contextmanager
def alarm_once_canary_starts(
    aws: MotoServer, alarm: str, reason: str, function: str = ANALYZE
) -> Iterator[None]:
    """While the body runs: as soon as `function`'s `live` alias carries a weighted
    version (the canary serves), put `alarm` in ALARM, as CloudWatch would after the
    canary's errors. Bounded: gives up after 120 s (the body's assertions then fail)."""
    lam, cw = client("lambda", aws), client("cloudwatch", aws)
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
                got = lam.get_alias(FunctionName=function, Name="live")
                if (got.get("RoutingConfig") or {}).get("AdditionalVersionWeights"):
                    cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason=reason)
                    return
            done.wait(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=10)
