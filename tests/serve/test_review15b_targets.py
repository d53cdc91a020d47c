"""review15b: `scarab serve --target sagemaker|fargate` under attack, on one serve process
per target: a killed serve (SIGKILL: no Ctrl-C handler runs) leaves no server behind
holding the port and answering from a dead emulator."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator

import pytest

from tests.serve.support import DEFAULT_TOML, http, make_project
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, start_serve

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

ENV = {"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None}


def _refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def sagemaker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    project = make_project(tmp_path_factory.mktemp("r15b-sm"), toml=DEFAULT_TOML, web=False)
    proc = start_serve(project, env=ENV, extra_args=["--target", "sagemaker"])
    try:
        yield proc
    finally:
        proc.stop()
        print(proc.output())


def test_a_killed_serve_leaves_no_server_behind(sagemaker: ServeProcess) -> None:
    # Last in this module: it ends the module's serve.
    assert http(f"{sagemaker.url}/ping").status == 200
    os.kill(sagemaker.process.pid, signal.SIGKILL)
    sagemaker.process.wait()
    wait_until(lambda: not sagemaker.group_pids(), timeout=20, what="serve's children exiting")
    assert _refused(sagemaker.port)
