"""A real moto server on 127.0.0.1, driven over HTTP like AWS itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field

from .ports import free_port, wait_for_http

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@dataclass
class MotoServer:
    """A moto server process; `url` is what AWS_ENDPOINT_URL should be."""

    port: int = field(default_factory=free_port)
    # AWS's ~1,200 managed policies (arn:aws:iam::aws:policy/...) are loaded again on
    # the first IAM call after every reset: 0.7 s a test. Only tests that attach one
    # ask for them (the `managed_policies` marker).
    managed_policies: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true" if self.managed_policies else "false",
            "MOTO_LAMBDA_STUB_ECR": "false",
        }
        self.process = subprocess.Popen(
            # moto's server with what scarab's embedded emulator teaches it (UpdateEndpoint).
            [sys.executable, "-m", "scarab.emulator", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_http(f"{self.url}/moto-api/", timeout=60)
        self.configure()

    def configure(self) -> None:
        # Lambda invoke would otherwise need a Docker engine.
        self._post("/moto-api/config", {"lambda": {"use_docker": False}})

    def reset(self) -> None:
        self._post("/moto-api/reset", None)
        self.configure()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def _post(self, path: str, payload: object) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method="POST")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
