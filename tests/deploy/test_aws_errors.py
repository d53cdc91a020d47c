"""`scarab status`, `logs` and `unlock` turn AWS failures into one line of advice (through
scarab.aws.aws_errors): an endpoint that is not AWS, one where nothing listens, a missing
resource. The real CLI runs, so a traceback would show on its stderr."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.errors import ScarabError
from scarab.keys import get_key_value

from tests.support.ports import free_port
from tests.support.serve_process import scarab_cli

pytestmark = pytest.mark.emulator

COMMANDS = (["status"], ["logs"], ["unlock"])


class _NotAws(BaseHTTPRequestHandler):
    """A web server that is not AWS (a page, or a web API's JSON error)."""

    status = 404
    content_type = "text/html"
    body = b"<!DOCTYPE html>\n<html>\n<body>\n<h1>Not Found</h1>\n</body>\n</html>\n"

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


class _ApiForbidden(_NotAws):
    status = 403
    content_type = "application/json"
    body = b'{"message": "Forbidden"}'  # API Gateway's answer without a key


class _AnyPage(_NotAws):
    status = 200  # a dev server that answers every path with its page


@contextlib.contextmanager
def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=[_NotAws, _ApiForbidden], ids=["html-404", "json-403"])
def not_aws(request: pytest.FixtureRequest) -> Iterator[str]:
    with _serve(request.param) as url:
        yield url


def _advice(project: Path, *args: str) -> str:
    """Run the CLI; it must fail (exit 1) with one line of advice and no traceback."""
    result = scarab_cli(project, *args)
    assert result.returncode == 1, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "<" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_endpoint_that_is_not_aws(aws, project: Path, not_aws: str, command) -> None:
    line = _advice(project, *command, "--endpoint-url", not_aws)
    assert "the endpoint answered HTTP" in line, line
    assert "check that it is AWS or an AWS emulator" in line, line


@pytest.mark.parametrize("command", [["status"], ["unlock"]], ids=lambda c: c[0])
def test_an_endpoint_that_answers_every_path_with_a_page(aws, project: Path, command) -> None:
    with _serve(_AnyPage) as url:
        line = _advice(project, *command, "--endpoint-url", url)
        assert "An AWS answer has no" in line, line
        assert "check that it is AWS or an AWS emulator" in line, line


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_endpoint_where_nothing_listens(aws, project: Path, command) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = _advice(project, *command, "--endpoint-url", url)
    assert line.startswith(f"error: Cannot reach {url}/"), line


def test_logs_of_a_stage_never_deployed(aws, project: Path) -> None:
    line = _advice(project, "logs", "--endpoint-url", aws.url)
    assert line == (
        "error: No log group /aws/lambda/scarab-test-analyze; deploy the stage first. (A stage"
        " not moved to its functions yet logs to /aws/lambda/scarab-test: --function all.)"
    )


def test_a_key_that_does_not_exist(aws, project: Path) -> None:
    with pytest.raises(ScarabError) as caught:
        get_key_value(load_config(project), "nokey123", project_dir=project, endpoint_url=aws.url)
    assert str(caught.value) == "No API key nokey123. 'scarab keys list' shows the keys."
