"""SnapStart in lens: init primes the function, and two restored copies share nothing.

A fresh interpreter initializes lens.handler with SnapStart on, answers a priming request,
and forks two restored copies that run the after-restore hooks (tests/function/
snapstart_probe.py). The copies must draw different random streams (from each other and
from the snapshot's own continuation), reach Gemini over new connections (the Gemini
test server sees each request's client port), use new clients, and still answer. Each
hook left out breaks the check it is there for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from lens import snapshot_hooks, snapstart
from lens.settings import CACHE_TABLE_ENV, CACHE_TTL_ENV
from scarab.deploy.planner_cache import TABLE_KEY

from tests.function.test_functions import MODEL_RUNTIME, _run_child
from tests.support.gemini_server import SAMPLE_ANALYSIS, GeminiServer
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).resolve().parents[2]
TABLE = "scarab-dev-cache"


def _probe(
    tmp_path: Path, aws: MotoServer, without: tuple[str, ...] = (), copies: int = 2
) -> dict[str, Any]:
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=aws.url)
    if TABLE not in ddb.list_tables()["TableNames"]:
        ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST", **TABLE_KEY)
    out = tmp_path / f"probe-{'-'.join(without) or 'all'}.json"
    env = {
        **os.environ,
        snapstart.SNAPSTART_ENV: "1",
        CACHE_TTL_ENV: "300",
        CACHE_TABLE_ENV: TABLE,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "lambda"), str(ROOT)]),
    }
    proc = subprocess.run(
        [
            sys.executable, "-m", "tests.function.snapstart_probe", str(out),
            json.dumps({"copies": copies, "without": list(without)}),
        ],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    for copy in result["copies"]:
        assert "error" not in copy, copy
    return result


def _ports(gemini: GeminiServer) -> list[int]:
    return [r.peer[1] for r in gemini.requests if r.peer is not None]


def test_init_primes_and_restored_copies_share_nothing(
    tmp_path: Path, aws: MotoServer, gemini: GeminiServer
) -> None:
    result = _probe(tmp_path, aws)
    # Init did the first request's work and registered the hooks with the fallback (no
    # Lambda runtime here).
    assert result["enabled"] is True
    primed = result["primed"]
    assert primed["gemini_client"] is True
    assert {"digits", "tabular"} <= set(primed["models"])
    assert primed["hooks"] == ["reseed_random", "drop_connections", "renew_gemini_client"]
    assert primed["hooks_module"] == "lens.snapshot_hooks"
    assert result["priming"]["status"] == 200
    one, two = result["copies"]
    assert one["pid"] != two["pid"]
    # Different random streams: from each other and from the snapshot's continuation.
    snapshot = result["snapshot_draws"]
    for name in ("random", "registry_split", "numpy"):
        streams = [snapshot[name], one["draws"][name], two["draws"][name]]
        assert len({tuple(s) for s in streams}) == 3, (name, streams)
    # New clients, new connections: the priming request's connection is the snapshot's;
    # each copy reached Gemini from a port of its own.
    for copy in (one, two):
        assert copy["gemini_client_renewed"] is True
        assert copy["cache_client_renewed"] is True
        assert copy["models_kept"] is True  # what init loaded stays loaded
    ports = _ports(gemini)
    assert len(ports) == 3, ports  # the priming request, then one per copy
    assert len(set(ports)) == 3, ports
    # And each copy still answers correctly.
    for copy in (one, two):
        assert copy["analyze"]["status"] == 200, copy["analyze"]
        assert (
            copy["analyze"]["body"]["analysis"]["picture_location"]
            == (SAMPLE_ANALYSIS["picture_location"])
        )
        assert copy["predict"]["status"] == 200, copy["predict"]


def test_without_the_reseed_hook_the_copies_draw_the_same_streams(
    tmp_path: Path, aws: MotoServer, gemini: GeminiServer
) -> None:
    result = _probe(tmp_path, aws, without=("reseed_random",))
    one, two = result["copies"]
    for name in ("random", "registry_split", "numpy"):
        assert one["draws"][name] == two["draws"][name] == result["snapshot_draws"][name], name


def test_without_the_gemini_hook_the_copies_reuse_the_snapshots_connection(
    tmp_path: Path, aws: MotoServer, gemini: GeminiServer
) -> None:
    result = _probe(tmp_path, aws, without=("renew_gemini_client",))
    assert [c["gemini_client_renewed"] for c in result["copies"]] == [False, False]
    ports = _ports(gemini)
    assert len(ports) == 3 and len(set(ports)) == 1, ports  # one socket, three processes


def test_without_dropping_connections_the_copies_keep_the_snapshots_clients(
    tmp_path: Path, aws: MotoServer, gemini: GeminiServer
) -> None:
    result = _probe(tmp_path, aws, without=("drop_connections",))
    assert [c["cache_client_renewed"] for c in result["copies"]] == [False, False]


def test_analyze_primed_imports_no_model_runtime(gemini: GeminiServer) -> None:
    """With SnapStart on, the analyze entry's init builds the Gemini client, and still
    imports nothing of the model runtime (its artifact ships none)."""
    env = {**os.environ, snapstart.SNAPSTART_ENV: "1"}
    out = _run_child("lens.entry.analyze", [], env)
    assert "google.genai" in out["loaded"]  # init imported the SDK, with no request
    assert [m for m in MODEL_RUNTIME if m in out["loaded"]] == []
    assert "boto3" not in out["loaded"]


def test_snapstart_off_imports_and_registers_nothing(gemini: GeminiServer) -> None:
    env = {k: v for k, v in os.environ.items() if k != snapstart.SNAPSTART_ENV}
    env.pop(snapstart.INIT_TYPE_ENV, None)
    out = _run_child("lens.entry.analyze", [], env)
    assert "google.genai" not in out["loaded"]  # imported on the first /analyze only
    assert "lens.snapshot_hooks" not in out["loaded"]


def test_lambdas_initialization_type_turns_it_on() -> None:
    assert snapstart.enabled({snapstart.INIT_TYPE_ENV: "snap-start"})
    assert snapstart.enabled({snapstart.SNAPSTART_ENV: "1"})
    assert not snapstart.enabled({snapstart.INIT_TYPE_ENV: "on-demand"})
    assert not snapstart.enabled({snapstart.SNAPSTART_ENV: "0"})
    assert not snapstart.enabled({})


def test_the_fallback_has_the_runtimes_api() -> None:
    """lens.snapshot_hooks stands in for the runtime's snapshot_restore_py: the same
    functions, entries (func, args, kwargs), before-snapshot hooks run last first."""
    ran: list[str] = []
    before, after = snapshot_hooks.get_before_snapshot(), snapshot_hooks.get_after_restore()
    saved = (list(before), list(after))
    try:
        before.clear()
        after.clear()

        @snapshot_hooks.register_before_snapshot
        def first() -> None:
            ran.append("first")

        snapshot_hooks.register_before_snapshot(ran.append, "second")
        snapshot_hooks.register_after_restore(ran.append, "restored")
        assert after == [(ran.append, ("restored",), {})]
        snapstart.run_before_snapshot()
        snapstart.run_after_restore()
        assert ran == ["second", "first", "restored"]
        assert first.__name__ == "first"  # the decorator returns the function
    finally:
        before[:] = saved[0]
        after[:] = saved[1]
