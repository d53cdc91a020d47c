"""Fixtures for the serve tests: one shared `scarab serve` for the tests that leave the
stage as they found it; tests that change keys or stop serve start their own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_GEMINI_KEY
from tests.serve.support import http, install_probe, make_project, tiny_jpeg_b64
from tests.support.gemini_server import GeminiServer
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, serve_factory, start_serve

__all__ = ["serve_factory"]

# Short, so the 504 rule takes seconds; test_timeout_default.py checks the real 29 s.
SHARED_INTEGRATION_TIMEOUT = 3


@dataclass
class Shared:
    """A running serve with the real function deployed and the probe beside it."""

    serve: ServeProcess
    project: Path
    gemini: GeminiServer

    @property
    def api(self) -> str:
        return self.serve.api_url

    @property
    def key(self) -> str:
        assert self.serve.api_key, self.serve.output()
        return self.serve.api_key


def serve_env(gemini: GeminiServer) -> dict[str, str | None]:
    return {
        "GOOGLE_GEMINI_BASE_URL": gemini.url,
        "GOOGLE_API_KEY": TEST_GEMINI_KEY,
        "GEMINI_API_KEY": None,
        "AWS_ENDPOINT_URL": None,
        "AWS_PROFILE": None,
    }


def _warm_analyze(proc: ServeProcess) -> None:
    """One /analyze and one POST /jobs first: the function imports the Gemini SDK (and
    the jobs' clients) lazily, which can take longer than the shortened integration
    timeout on a busy machine."""
    body = json.dumps({"image": tiny_jpeg_b64()}).encode()
    headers = {"x-api-key": proc.api_key or "", "Content-Type": "application/json"}
    wait_until(
        lambda: http(f"{proc.api_url}/analyze", "POST", body, headers).status != 504,
        timeout=60,
        what="a warm /analyze",
    )
    # POST /jobs loads more on its first call (the jobs store, S3, DynamoDB and Lambda
    # clients, Powertools' idempotency) than the shortened timeout allows on a busy machine.
    started: list[str] = []

    def job_started() -> bool:
        answer = http(f"{proc.api_url}/jobs", "POST", body, headers)
        if answer.status == 202:
            started.append(answer.json()["job_id"])
        return answer.status != 504

    wait_until(job_started, timeout=60, what="a warm POST /jobs")

    # ...and its run finished, so no test meets a worker still busy with it.
    def finished(job_id: str) -> bool:
        status = http(f"{proc.api_url}/jobs/{job_id}", headers=headers).json()["status"]
        return status in ("succeeded", "failed")

    (job_id,) = started
    wait_until(lambda: finished(job_id), timeout=60, what="the warm-up job finishing")


@pytest.fixture(scope="session")
def shared(
    tmp_path_factory: pytest.TempPathFactory, gemini_session_server: GeminiServer
) -> Iterator[Shared]:
    project = make_project(tmp_path_factory.mktemp("serve-project"))
    proc = start_serve(
        project,
        env=serve_env(gemini_session_server),
        extra_args=["--integration-timeout", str(SHARED_INTEGRATION_TIMEOUT)],
    )
    try:
        install_probe(project, "scarab-dev-probe", "probe", env={"PROBE_VAR": "one"})
        install_probe(project, "scarab-dev-probe-short", "probe-short", timeout=1)
        wait_until(
            lambda: http(f"{proc.api_url}/probe/echo").status == 200,
            what="the probe route appearing in serve",
        )
        _warm_analyze(proc)
        yield Shared(proc, project, gemini_session_server)
    finally:
        proc.stop()
        print(proc.output())
