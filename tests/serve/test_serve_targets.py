"""`scarab serve --target fargate|sagemaker`: the server (lens.server on uvicorn) against
the emulated stage, reading the same registry as the function. Fargate's server takes the
key ring serve creates (a first key when missing); SageMaker's has no keys and
Serverless's limits on /invocations."""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from scarab.serve.stack import LocalStack
from scarab.serve.target_server import ServerlessLimits
from scarab.serve.targets import ensure_keys
from sklearn.datasets import load_breast_cancer

from tests.serve.support import DEFAULT_TOML, REPO, emulator_url, http, make_project
from tests.support.serve_process import ServeProcess, scarab_cli, start_serve

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

ENV = {"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None}
README = REPO / "README.md"


def readme_targets_block() -> list[list[str]]:
    """The argv of each line of README.md's block with `scarab serve --target` in it
    (comments dropped), without the leading `scarab`."""
    lines: list[str] = []
    block: list[str] | None = None
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            if block is not None and any("scarab serve --target" in b for b in block):
                lines = block
            block = [] if block is None else None
        elif block is not None:
            block.append(line)
    assert lines, "README.md has no block with `scarab serve --target`"
    return [shlex.split(line.split("#", 1)[0])[1:] for line in lines if line.strip()]


def readme_serve_args(target: str) -> list[str]:
    """The README's `scarab serve --target <target>` line, as serve's arguments."""
    found = [
        argv[1:] for argv in readme_targets_block() if argv[:3] == ["serve", "--target", target]
    ]
    assert len(found) == 1, readme_targets_block()
    return found[0]


def features() -> bytes:
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    return json.dumps(
        {"features": dict(zip(names, map(float, data.data[0]), strict=True))}
    ).encode()


@pytest.fixture(scope="module")
def fargate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    project = make_project(tmp_path_factory.mktemp("fargate"), toml=DEFAULT_TOML, web=False)
    proc = start_serve(project, env=ENV, extra_args=readme_serve_args("fargate"))
    try:
        yield proc
    finally:
        proc.stop()
        print(proc.output())


def test_fargate_serves_the_registry_behind_the_key_ring(fargate: ServeProcess) -> None:
    key = fargate.api_key
    assert key, fargate.output()
    assert f"URL:         {fargate.url}" in fargate.output()
    assert "scarab keys list --target fargate --local" in fargate.output()
    assert http(f"{fargate.url}/health").status == 200
    assert http(f"{fargate.url}/models").status in (401, 403)
    listed = http(f"{fargate.url}/models", headers={"x-api-key": key})
    assert listed.status == 200
    assert {"tabular", "digits", "bikes-3h"} <= {m["name"] for m in listed.json()["models"]}
    headers = {"x-api-key": key, "Content-Type": "application/json"}
    answer = http(f"{fargate.url}/predict/tabular", "POST", features(), headers)
    assert answer.status == 200, answer.body
    assert answer.json()["model_version"] == "1.0.0"

    # The key ring is the server's secret, in lens.server.keys's format.
    sm = boto3.client(
        "secretsmanager", region_name="us-east-1", endpoint_url=emulator_url(fargate.project_dir),
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    ring = json.loads(sm.get_secret_value(SecretId="scarab-dev/fargate-api-keys")["SecretString"])
    assert [k["value"] for k in ring["keys"] if k["enabled"]] == [key]


def test_the_key_ring_is_made_once_and_then_kept(aws: Any) -> None:
    # Against the session's moto server: serve's own emulator lives only as long as serve.
    stack = LocalStack(
        project_dir=REPO, endpoint_url=aws.url, region="us-east-1", stage="keys",
        rest_api_id="", emulator=None, app="scarab",
    )  # fmt: skip
    secret, first = ensure_keys(stack)
    assert secret == "scarab-keys/fargate-api-keys"
    assert ensure_keys(stack) == (secret, first)
    sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=aws.url)
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=secret)["Tags"]}
    assert tags == {"scarab:app": "scarab", "scarab:stage": "keys"}


def test_sagemaker_serves_invocations_without_keys_within_serverless_limits(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path / "sm", toml=DEFAULT_TOML, web=False)
    proc = start_serve(project, env=ENV, extra_args=readme_serve_args("sagemaker"))
    try:
        assert http(f"{proc.url}/ping").status == 200
        headers = {
            "Content-Type": "application/json",
            "X-Amzn-SageMaker-Custom-Attributes": "model=tabular",
        }
        answer = http(f"{proc.url}/invocations", "POST", features(), headers)
        assert answer.status == 200, answer.body
        assert answer.json()["label"] in ("malignant", "benign")
        big = features()[:-1] + b" " * (4 * 1024 * 1024) + b"}"
        refused = http(f"{proc.url}/invocations", "POST", big, headers)
        assert refused.status == 413
        assert refused.json()["error"]["code"] == "payload_too_large"
    finally:
        proc.stop()
        print(proc.output())


def test_the_readme_block_has_no_line_left_unrun() -> None:
    kinds = [argv[:3] for argv in readme_targets_block()]
    assert kinds == [
        ["serve", "--target", "fargate"],
        ["serve", "--target", "sagemaker"],
        ["models", "push", "churn.joblib"],  # tests/serve/test_sagemaker_forwarding.py
    ]


def test_serve_refuses_an_unknown_target(tmp_path: Path) -> None:
    project = make_project(tmp_path / "x", toml=DEFAULT_TOML, web=False)
    result = scarab_cli(project, "serve", "--target", "ec2")
    assert result.returncode == 2
    assert "--target" in result.stderr and "Traceback" not in result.stderr


async def _run(app: Any, body: bytes) -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]
    messages = iter(
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    )

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/invocations", "method": "POST", "headers": []}
    await app(scope, receive, send)
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body_out)


def test_the_limits_cut_a_slow_invocation_and_pass_a_quick_one() -> None:
    async def model(scope: Any, receive: Any, send: Any) -> None:
        request = await receive()
        if request["body"] == b"slow":
            await asyncio.sleep(30)
        payload = json.dumps({"got": len(request["body"])}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": payload})

    limited = ServerlessLimits(model, payload_limit=100_000, timeout_s=0.2)
    assert asyncio.run(_run(limited, b"x" * 100_000)) == (200, {"got": 100_000})
    status, body = asyncio.run(_run(limited, b"slow"))
    assert status == 504 and body["error"]["code"] == "model_timeout"
    status, body = asyncio.run(_run(limited, b"x" * 100_001))
    assert status == 413 and body["error"]["code"] == "payload_too_large"
