"""A stage deployed as one function (`<app>-<stage>`, before the split) moves to its
analyze and models functions on the next deploy, under traffic through `scarab serve`,
with no request failing; afterwards each function runs in its own workers, with its own
environment and artifact."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.deploy import deploy
from scarab.emulator import emulator_session, start_embedded
from scarab.functions import ALL_ROUTES

from tests.predict.drawing import b64, draw_digit
from tests.serve.support import http, make_project
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, scarab_cli

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

StartServe = Callable[..., ServeProcess]
ANALYZE, MODELS = "scarab-dev-analyze", "scarab-dev-models"
Route = tuple[str, str, dict[str, str], bytes | None]


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode() for k, v in pairs}


def workers(serve: ServeProcess) -> dict[str, list[int]]:
    """serve's worker processes by the function each runs (from its environment)."""
    out: dict[str, list[int]] = {}
    for pid in serve.group_pids():
        if pid == serve.pid:
            continue
        try:
            name = _environ(pid).get("AWS_LAMBDA_FUNCTION_NAME")
        except OSError:
            continue  # exited meanwhile
        if name:
            out.setdefault(name, []).append(pid)
    return out


def test_a_single_function_stage_is_split_under_traffic(
    tmp_path: Path, serve_factory: StartServe
) -> None:
    project = make_project(tmp_path / "p", web=False)
    emulator = start_embedded(project)
    try:
        config = load_config(project)
        old = deploy(
            config, project_dir=project, endpoint_url=emulator.url, functions=(ALL_ROUTES,),
            session=emulator_session(config.resolved_region),
        )  # fmt: skip
        assert old.function_name == "scarab-dev" and list(old.functions) == ["all"]
        env = {"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None}
        serve = serve_factory(project, extra_args=["--no-deploy"], env=env)
        key = serve.api_key or ""
        digit = json.dumps({"image": b64(draw_digit(3))}).encode()
        json_key = {"x-api-key": key, "Content-Type": "application/json"}
        routes: list[Route] = [
            ("GET", "/health", {}, None),
            ("GET", "/models", {"x-api-key": key}, None),
            ("GET", "/openapi.json", {}, None),
            ("POST", "/predict/digits", json_key, digit),
        ]
        wait_until(lambda: "scarab-dev" in workers(serve) or _warm(serve, routes), what="warm")
        assert set(workers(serve)) == {"scarab-dev"}

        failures: list[str] = []
        counts = {"ok": 0}
        stop = threading.Event()

        def client(n: int) -> None:
            i = n
            while not stop.is_set():
                i += 1
                method, path, headers, body = routes[i % len(routes)]
                resp = http(f"{serve.api_url}{path}", method, body, headers, timeout=60)
                if resp.status != 200:
                    failures.append(f"{method} {path}: {resp.status} {resp.body[:200]!r}")
                else:
                    counts["ok"] += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: counts["ok"] >= 20, timeout=60, what="traffic on the old function")
            before = counts["ok"]
            migrated = scarab_cli(project, "deploy", "--local", "--json")
            assert migrated.returncode == 0, migrated.stderr
            # Serve picks the new routing up on its next read of the emulator.
            wait_until(
                lambda: {ANALYZE, MODELS} <= set(workers(serve)),
                what="the split functions serving the routes",
                timeout=60,
            )
            time.sleep(2.0)  # more traffic on the new functions
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert failures == [], failures[:5]
        assert counts["ok"] > before + 30, counts

        ses = emulator_session("us-east-1")
        lam = ses.client("lambda", endpoint_url=emulator.url)
        # (The embedded emulator runs in this process: other tests' stages may be there.)
        names = sorted(f["FunctionName"] for f in lam.list_functions()["Functions"])
        assert [n for n in names if n.startswith("scarab-dev")] == [ANALYZE, MODELS]
        roles = sorted(r["RoleName"] for r in ses.client("iam", endpoint_url=emulator.url)
                       .list_roles()["Roles"])  # fmt: skip
        assert [r for r in roles if r.startswith("scarab-dev")] == [
            f"{ANALYZE}-role",
            f"{MODELS}-role",
        ]
        # The old function's logs stay (with their retention) until destroy.
        logs = ses.client("logs", endpoint_url=emulator.url)
        groups = [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]
        assert "/aws/lambda/scarab-dev" in groups

        # Each function in its own pool: its own environment and its own artifact.
        for method, path, headers, body in routes:
            assert http(f"{serve.api_url}{path}", method, body, headers).status == 200
        wait_until(lambda: "scarab-dev" not in workers(serve), what="old containers retired")
        pools = workers(serve)
        analyze_pid, models_pid = pools[ANALYZE][0], pools[MODELS][0]
        analyze_env, models_env = _environ(analyze_pid), _environ(models_pid)
        assert analyze_env["GOOGLE_API_KEY_PARAM"] == "/scarab/scarab/dev/gemini-api-key"
        assert "GOOGLE_API_KEY_PARAM" not in models_env
        assert analyze_env["_HANDLER"] == "lens.entry.analyze.lambda_handler"
        assert models_env["_HANDLER"] == "lens.entry.models.lambda_handler"
        analyze_code = Path(os.readlink(f"/proc/{analyze_pid}/cwd"))
        models_code = Path(os.readlink(f"/proc/{models_pid}/cwd"))
        assert analyze_code != models_code
        assert (models_code / "lens/predict/tabular.py").is_file()
        assert not (analyze_code / "lens/predict/tabular.py").exists()
        assert not (models_code / "lens/gemini.py").exists()
        # The analyze worker answered /health and /openapi.json without loading either; the
        # models worker loaded onnxruntime for the digit.
        maps = Path(f"/proc/{analyze_pid}/maps").read_text()
        assert "onnxruntime" not in maps and "numpy" not in maps
        # (any of its workers: the digit may have gone to another one of the pool)
        loaded = ["onnxruntime" in Path(f"/proc/{pid}/maps").read_text() for pid in pools[MODELS]]
        assert any(loaded), loaded
    finally:
        emulator.stop()


def _warm(serve: ServeProcess, routes: list[Route]) -> bool:
    for method, path, headers, body in routes:
        http(f"{serve.api_url}{path}", method, body, headers)
    return False
