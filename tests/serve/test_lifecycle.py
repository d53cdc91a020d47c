"""`scarab serve` as a process: what it prints, how it stops, key rotation under traffic."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.serve.conftest import serve_env
from tests.serve.support import (
    clients,
    http,
    install_probe,
    make_project,
    tiny_jpeg_b64,
)
from tests.support.gemini_server import GeminiServer
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, scarab_cli, start_serve

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

StartServe = Callable[..., ServeProcess]


def test_start_prints_urls_and_key_and_ctrl_c_leaves_nothing_behind(
    tmp_path: Path, serve_factory: StartServe
) -> None:
    project = make_project(tmp_path / "p", web=False)
    env = {"GOOGLE_API_KEY": None, "GEMINI_API_KEY": None, "AWS_ENDPOINT_URL": None}
    serve = serve_factory(project, env=env)
    out = serve.output()
    assert f"API URL:     {serve.api_url}" in out
    assert f"Web client:  {serve.url}/" in out
    assert serve.api_key and len(serve.api_key) >= 20
    record = project / ".scarab" / "local" / "serve.json"
    assert json.loads(record.read_text()) == {
        "url": serve.url,
        "api_url": serve.api_url,
        "pid": serve.pid,
    }
    # The printed key works; the web client is not built in this project.
    assert http(f"{serve.api_url}/models", headers={"x-api-key": serve.api_key}).status == 200
    page = http(f"{serve.url}/")
    assert page.status == 200 and b"not built yet" in page.body
    # No Gemini key in the environment: the function's own 503, offline routes still work.
    resp = http(
        f"{serve.api_url}/analyze",
        "POST",
        json.dumps({"image": tiny_jpeg_b64()}).encode(),
        {"x-api-key": serve.api_key, "Content-Type": "application/json"},
    )
    assert resp.status == 503, resp.body
    assert resp.json()["error"]["code"] == "gemini_not_configured"
    workers = [p for p in serve.group_pids() if p != serve.pid]
    assert workers, "the function runs in a worker process"

    code = serve.stop()
    assert code == 0, serve.output()
    assert serve.orphans == []
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    assert not record.exists()
    assert not (project / ".scarab" / "local" / "emulator.json").exists()
    assert "Traceback" not in serve.output()


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] == "Z"


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", web=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(RuntimeError) as info:
            start_serve(project, port=port, timeout=60)
    message = str(info.value)
    assert f"127.0.0.1:{port} is already in use" in message
    assert "Traceback" not in message


def test_rotation_under_traffic_then_revoke(
    tmp_path: Path, serve_factory: StartServe, gemini_session_server: GeminiServer
) -> None:
    project = make_project(tmp_path / "p", web=False)
    serve = serve_factory(project, env=serve_env(gemini_session_server))
    old_key = serve.api_key
    assert old_key
    keys = [old_key]
    failures: list[str] = []
    counts = {"ok": 0}
    stop = threading.Event()
    use_old = threading.Event()
    use_old.set()

    def client(n: int) -> None:
        i = n
        while not stop.is_set():
            i += 1
            usable = keys if use_old.is_set() else keys[1:]
            key = usable[i % len(usable)]
            url = f"{serve.api_url}/models" if i % 3 else f"{serve.url}/api/models"
            resp = http(url, headers={"x-api-key": key} if "/api/" not in url else {})
            if resp.status != 200:
                failures.append(f"{url} with key #{keys.index(key)}: {resp.status} {resp.body!r}")
            else:
                counts["ok"] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        rotated = scarab_cli(project, "keys", "rotate", "--local", "--json")
        assert rotated.returncode == 0, rotated.stderr
        new = json.loads(rotated.stdout)
        assert new["value"] != old_key
        # The new key works once serve has read it (API Gateway also takes a moment).
        wait_until(
            lambda: (
                http(f"{serve.api_url}/models", headers={"x-api-key": new["value"]}).status == 200
            ),
            what="the rotated-in key accepted",
        )
        keys.append(new["value"])  # from now on traffic uses both keys
        time.sleep(2.0)
        assert failures == [], failures[:5]

        old_id = next(
            k["id"]
            for k in clients(project)[0].get_api_keys(includeValues=True)["items"]
            if k["value"] == old_key
        )
        use_old.clear()  # clients switch over before the revoke, as the CLI advises
        time.sleep(0.3)
        revoked = scarab_cli(project, "keys", "revoke", old_id, "--local")
        assert revoked.returncode == 0, revoked.stderr
        wait_until(
            lambda: http(f"{serve.api_url}/models", headers={"x-api-key": old_key}).status == 403,
            what="the revoked key refused",
        )
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == [], failures[:5]
    assert counts["ok"] > 50
    resp = http(f"{serve.api_url}/models", headers={"x-api-key": old_key})
    assert resp.json() == {"message": "Forbidden"}
    assert http(f"{serve.api_url}/models", headers={"x-api-key": keys[1]}).status == 200


def test_cli_reports_the_serve_url_while_serve_runs(
    tmp_path: Path, serve_factory: StartServe
) -> None:
    """`status --local` and `deploy --local` name where the API answers: serve's /<stage>."""
    project = make_project(tmp_path / "p", web=False)
    serve = serve_factory(project, env={"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None})
    status = scarab_cli(project, "status", "--local", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["url"] == serve.api_url
    redeploy = scarab_cli(project, "deploy", "--local", "--json")
    assert redeploy.returncode == 0, redeploy.stderr
    result = json.loads(redeploy.stdout)
    assert result["up_to_date"] is True and result["url"] == serve.api_url


def test_serve_reuses_a_running_emulator_with_no_deploy(
    tmp_path: Path, serve_factory: StartServe
) -> None:
    project = make_project(tmp_path / "p", web=False)
    first = serve_factory(project, env={"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None})
    second = serve_factory(project, extra_args=["--no-deploy"], env={"AWS_ENDPOINT_URL": None})
    assert "emulator reused" in second.output()
    assert second.api_key == first.api_key
    assert (
        http(f"{second.api_url}/models", headers={"x-api-key": second.api_key or ""}).status == 200
    )


@pytest.mark.slow
def test_default_integration_timeout_is_29_seconds(
    tmp_path: Path, serve_factory: StartServe
) -> None:
    project = make_project(tmp_path / "p", web=False)
    serve = serve_factory(project, env={"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None})
    install_probe(project, "scarab-dev-probe", "probe", timeout=60)
    wait_until(lambda: http(f"{serve.api_url}/probe/echo").status == 200, what="probe route")
    started = time.monotonic()
    resp = http(f"{serve.api_url}/probe/sleep?s=31", timeout=60)
    elapsed = time.monotonic() - started
    assert resp.status == 504
    assert resp.json() == {"message": "Endpoint request timed out"}
    assert 28.8 <= elapsed < 30.5


def test_no_deploy_with_nothing_deployed_is_a_clear_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", web=False)
    with pytest.raises(RuntimeError) as info:
        start_serve(project, extra_args=["--no-deploy"], timeout=60)
    message = str(info.value)
    assert "No REST API is deployed for stage 'dev'" in message
    assert "Traceback" not in message
    assert not (project / ".scarab" / "local" / "emulator.json").exists()
