"""Review of issue 15: a chunked body (no Content-Length) over the limit is refused as
soon as the limit is passed; before, the server read it to its end, so a client could
stream without end and never get the 413."""

from __future__ import annotations

import http.client
import json

import pytest

from tests.server.conftest import KEY, MAX_BODY
from tests.server.support import ServerProcess, request


@pytest.mark.parametrize("path", ["/predict/tabular", "/invocations"])
def test_a_chunked_body_over_the_limit_gets_413_before_it_ends(
    server: ServerProcess, path: str
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest("POST", path)
        connection.putheader("x-api-key", KEY)
        connection.putheader("content-type", "application/json")
        connection.putheader("transfer-encoding", "chunked")
        connection.endheaders()
        chunk = b"x" * 8192
        for _ in range(MAX_BODY // len(chunk) + 2):  # past the limit, and never the last chunk
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        response = connection.getresponse()  # the 413 comes while the body is still open
        assert response.status == 413
        assert json.loads(response.read())["error"]["code"] == "body_too_large"
    finally:
        connection.close()
    # The server goes on answering (that connection is closed, not the server).
    assert request(server.url, "GET", "/models", headers={"x-api-key": KEY})[0] == 200
