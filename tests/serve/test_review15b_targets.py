"""review15b: `scarab serve --target sagemaker` under attack, on one serve process: the
endpoint computes a model whose registry entry names this very endpoint (the README's
`models push ... --host sagemaker:scarab-dev` beside it) instead of forwarding it to
InvokeEndpoint, i.e. to itself; and a killed serve (SIGKILL: no Ctrl-C handler runs)
leaves no server behind holding the port and answering from a dead emulator."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.serve.support import DEFAULT_TOML, http, make_project
from tests.serve.test_sagemaker_forwarding import features, push
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, start_serve

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

ENV = {"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None}
# A one-second registry cache, so a push is served at once (the server reads the registry
# as the models function does, with its TTL).
TOML = DEFAULT_TOML + '\n[functions.models.environment]\nSCARAB_REGISTRY_TTL_S = "1"\n'


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def sagemaker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    project = make_project(tmp_path_factory.mktemp("r15b-sm"), toml=TOML, web=False)
    proc = start_serve(project, env=ENV, extra_args=["--target", "sagemaker"])
    try:
        yield proc
    finally:
        proc.stop()
        print(proc.output())


def invoke(proc: ServeProcess, model: str) -> Any:
    headers = {
        "Content-Type": "application/json",
        "X-Amzn-SageMaker-Custom-Attributes": f"model={model}",
    }
    return http(f"{proc.url}/invocations", "POST", features(2), headers)


def test_the_endpoint_computes_a_model_hosted_on_itself(sagemaker: ServeProcess) -> None:
    push(sagemaker.project_dir, "own", "sagemaker:scarab-dev")
    wait_until(lambda: invoke(sagemaker, "own").status != 404, timeout=20, what="the push served")
    answer, local = invoke(sagemaker, "own"), invoke(sagemaker, "tabular")
    assert answer.status == 200, answer.body
    assert answer.json()["model_version"] == "1"
    assert answer.json()["label"] == local.json()["label"]


def test_a_killed_serve_leaves_no_server_behind(sagemaker: ServeProcess) -> None:
    # Last in this module: it ends the module's serve.
    assert http(f"{sagemaker.url}/ping").status == 200
    os.kill(sagemaker.process.pid, signal.SIGKILL)
    sagemaker.process.wait()
    wait_until(lambda: not sagemaker.group_pids(), timeout=20, what="serve's children exiting")
    assert _refused(sagemaker.port)
