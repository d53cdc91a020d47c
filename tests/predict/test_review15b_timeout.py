"""review15b: an endpoint that does not answer in time is asked once, and one that answers
with another version than the one asked for is not passed on. botocore's standard
retry mode counts a read timeout as transient, so the models function waited for the
endpoint twice (2 x 65 s, beyond any caller's patience and billed) and sent the model
the same request twice. A real HTTP server that never answers stands in for the endpoint
(sagemaker-runtime reaches it through AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from lens.errors import ApiError
from lens.predict import sagemaker
from lens.predict.registry import registry


class Silent(BaseHTTPRequestHandler):
    calls = 0
    released = threading.Event()

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.released.wait(10)  # longer than the client's read timeout

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def silent_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Silent]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{server.server_address[1]}"
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(sagemaker, "READ_TIMEOUT_S", 1)  # our constant: a short test
    monkeypatch.setattr(sagemaker, "_client", None)
    Silent.calls = 0
    try:
        yield Silent
    finally:
        Silent.released.set()
        server.shutdown()
        server.server_close()
        sagemaker._client = None


def test_a_timed_out_invocation_is_not_sent_again(silent_endpoint: type[Silent]) -> None:
    entry = registry().get("tabular")
    assert entry is not None
    hosted = entry.model_copy(update={"host": "sagemaker:slow-ep"})
    with pytest.raises(ApiError) as raised:
        sagemaker.invoke(hosted, b"{}")
    assert (raised.value.status, raised.value.code) == (504, "model_timeout")
    assert silent_endpoint.calls == 1


class Stale(BaseHTTPRequestHandler):
    """An endpoint deployed before the version asked for: it answers with its own."""

    attributes: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).attributes.append(self.headers.get("X-Amzn-SageMaker-Custom-Attributes", ""))
        body = b'{"label": "benign", "model_version": "0.9"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_another_versions_answer_is_not_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stale)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setattr(sagemaker, "_client", None)
    entry = registry().get("tabular")
    assert entry is not None
    try:
        with pytest.raises(ApiError) as raised:
            sagemaker.invoke(entry.model_copy(update={"host": "sagemaker:old-ep"}), b"{}")
    finally:
        server.shutdown()
        server.server_close()
        sagemaker._client = None
    assert (raised.value.status, raised.value.code) == (502, "endpoint_version_mismatch")
    assert "0.9" in raised.value.message and entry.version in raised.value.message
    assert Stale.attributes == [f"model=tabular,version={entry.version}"]
