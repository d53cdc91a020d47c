"""Operating a deployed stage: invoke, logs, Secrets Manager, role propagation."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import botocore.exceptions
import pytest
from scarab.cli import app
from scarab.config import load_config
from scarab.deploy import deploy
from scarab.invoke import invoke, running_serve
from scarab.logs import parse_since, tail
from scarab.secrets import set_secret
from scarab.serve.record import ServeRecord
from typer.testing import CliRunner

from tests.deploy.conftest import Recorder, client, counted_session
from tests.support.serve_process import dead_pid

pytestmark = pytest.mark.emulator


class _Api(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Api.seen.append(
            {"path": self.path, "key": self.headers.get("x-api-key"), "body": json.loads(body)}
        )
        payload = json.dumps({"analysis": {"title": "a scarab"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_api():
    _Api.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/test", _Api.seen
    server.shutdown()
    server.server_close()


def test_invoke_posts_the_image_with_a_key(run_deploy, aws, project: Path, fake_api) -> None:
    first, _ = run_deploy()
    url, seen = fake_api
    image = project / "photo.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0fake-jpeg")
    result = invoke(
        load_config(project),
        image,
        project_dir=project,
        speed="super-fast",
        endpoint_url=aws.url,
        base_url=url,
    )
    assert result.status == 200 and result.body == {"analysis": {"title": "a scarab"}}
    key = client("apigateway", aws).get_api_key(apiKey=first.api_key_id, includeValue=True)
    assert seen[0]["path"] == "/test/analyze"
    assert seen[0]["key"] == key["value"]
    assert seen[0]["body"]["speed"] == "super-fast"
    assert seen[0]["body"]["image"] == "/9j/4GZha2UtanBlZw=="


def test_invoke_local_prefers_a_running_serve(project: Path, fake_api) -> None:
    url, _ = fake_api
    assert running_serve(project) is None
    # A record this (live) process wrote, of a serve that answers: invoke goes there.
    ServeRecord(url=url, api_url=url, pid=os.getpid()).write(project)
    assert running_serve(project) == url
    # The record of a serve that was killed: ignored, even though its URL still answers.
    ServeRecord(url=url, api_url=url, pid=dead_pid()).write(project)
    assert running_serve(project) is None


def test_logs_prints_recent_events(run_deploy, aws, project: Path, monkeypatch) -> None:
    run_deploy()
    logs = client("logs", aws)
    logs.create_log_stream(logGroupName="/aws/lambda/scarab-test-analyze", logStreamName="s1")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName="/aws/lambda/scarab-test-analyze",
        logStreamName="s1",
        logEvents=[
            {"timestamp": now - 1000, "message": "analysis done"},
            {"timestamp": now, "message": "second line"},
        ],
    )
    lines = list(tail(load_config(project), project_dir=project, since="5m", endpoint_url=aws.url))
    assert [line.split(" ", 1)[1] for line in lines] == ["analysis done", "second line"]
    monkeypatch.chdir(project)
    cli = CliRunner().invoke(app, ["logs", "--since", "1h", "--endpoint-url", aws.url])
    assert cli.exit_code == 0 and "analysis done" in cli.output
    bad = CliRunner().invoke(app, ["logs", "--since", "soon"])
    assert bad.exit_code == 2 and "10m" in bad.output
    assert parse_since("2h") == 7200


def test_logs_follow_prints_events_as_they_arrive(run_deploy, aws, project: Path) -> None:
    run_deploy()
    logs = client("logs", aws)
    logs.create_log_stream(logGroupName="/aws/lambda/scarab-test-analyze", logStreamName="s1")
    now = int(time.time() * 1000)

    def put(timestamp: int, message: str) -> None:
        logs.put_log_events(
            logGroupName="/aws/lambda/scarab-test-analyze",
            logStreamName="s1",
            logEvents=[{"timestamp": timestamp, "message": message}],
        )

    put(now - 1000, "before follow")
    lines = tail(
        load_config(project), project_dir=project, since="5m", endpoint_url=aws.url,
        follow=True, poll=0.05,
    )  # fmt: skip
    assert next(lines).endswith("before follow")
    put(now, "arrived while following")
    put(now + 5, "and another")
    assert [next(lines).split(" ", 1)[1] for _ in range(2)] == [
        "arrived while following",
        "and another",
    ]
    lines.close()


def test_secrets_manager_backend(aws, project: Path) -> None:
    text = (project / "scarab.toml").read_text()
    (project / "scarab.toml").write_text(
        text + '\n[secrets]\nbackend = "secretsmanager"\ngemini_api_key = "scarab/test/gemini"\n'
    )
    config = load_config(project)
    deploy(config, project_dir=project, endpoint_url=aws.url)
    result = set_secret(config, "sm-value", project_dir=project, endpoint_url=aws.url)
    assert result.function_wired and result.name == "scarab/test/gemini"
    got = client("secretsmanager", aws).get_secret_value(SecretId="scarab/test/gemini")
    assert got["SecretString"] == "sm-value"
    set_secret(config, "sm-value-2", project_dir=project, endpoint_url=aws.url)
    got = client("secretsmanager", aws).get_secret_value(SecretId="scarab/test/gemini")
    assert got["SecretString"] == "sm-value-2"
    policy = client("iam", aws).get_role_policy(
        RoleName="scarab-test-analyze-role", PolicyName="scarab-read-secret"
    )
    stmt = policy["PolicyDocument"]["Statement"][0]
    assert stmt["Action"] == "secretsmanager:GetSecretValue"
    assert stmt["Resource"].endswith(":secret:scarab/test/gemini-??????")


def test_new_role_propagation_is_retried(aws, project: Path) -> None:
    left = {"n": 1}

    def not_yet(model, **_):
        if model.name == "CreateFunction" and left["n"]:
            left["n"] -= 1
            raise botocore.exceptions.ClientError(
                {
                    "Error": {
                        "Code": "InvalidParameterValueException",
                        "Message": "The role defined for the function cannot be assumed by Lambda.",
                    }
                },
                model.name,
            )

    recorder = Recorder()
    session = counted_session(recorder)
    session.events.register("before-call", not_yet)
    result = deploy(
        load_config(project), project_dir=project, endpoint_url=aws.url, session=session
    )
    assert left["n"] == 0 and result.function_name == "scarab-test-analyze"
    # Two functions, the first one's create retried once.
    assert recorder.calls.count("lambda.CreateFunction") == 3
