"""`scarab predictions` through the function when the log's secret holds something that
is not a usable database URL (garbage, an unsupported scheme, an unencoded '@' in the
password): the answer says what is wrong with the URL, never the URL or its password."""

from __future__ import annotations

import json

import pytest

from tests.log.test_remote_predictions import _direct
from tests.log.test_writer import _configure
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator


@pytest.mark.parametrize(
    ("secret", "says"),
    [
        ("s3cr3t-Only-Garbage", "is not a URL"),
        ("oracle://scott:s3cr3t-Tiger@db/orcl", "supports sqlite, postgresql and mysql"),
        ("postgresql://scott:s3cr3t@Tiger@db/log", "percent-encode it as %40"),
    ],
)
def test_an_unusable_url_is_said_without_the_url(
    secret: str, says: str, aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(monkeypatch, secret)
    answer = _direct()
    assert answer["error"]["code"] == "read_failed", answer
    assert says in answer["error"]["message"], answer
    assert "s3cr3t" not in json.dumps(answer)
