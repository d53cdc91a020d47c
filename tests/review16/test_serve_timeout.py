"""A job whose Gemini call outlasts the function's timeout, through a real `scarab serve`
with `[function] timeout = 6`: it must end failed (after [jobs] retries), never stuck
in running."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from tests.serve.conftest import serve_env
from tests.serve.support import make_project
from tests.serve.test_jobs_flow import Stack, _jpeg
from tests.support.gemini_server import GeminiServer

TOML = """\
app = "scarab"
stage = "dev"

[function]
timeout = 6

[function.environment]
SCARAB_MAX_ATTEMPTS = "1"

[cache]
ttl_seconds = 0

[jobs]
retries = 1
"""


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, gemini_session_server: GeminiServer
) -> Iterator[Stack]:
    from tests.support.serve_process import start_serve

    project = make_project(tmp_path_factory.mktemp("review16-timeout"), TOML)
    proc = start_serve(project, env=serve_env(gemini_session_server))
    try:
        yield Stack(proc, project, gemini_session_server)
    finally:
        proc.stop()
        print(proc.output()[-5000:])


def test_a_job_whose_upstream_outlasts_the_function_timeout_ends_failed(stack: Stack) -> None:
    stack.gemini.reset()
    for _ in range(3):
        stack.gemini.reply_delay(30.0)
    created = stack.call("POST", "/jobs", {"image": base64.b64encode(_jpeg(seed=51)).decode()})
    assert created.status == 202, created.body
    job = stack.wait_job(created.json()["job_id"], timeout=90)
    assert job["status"] == "failed", job
    assert job["error"]["code"], job
    print(job)
