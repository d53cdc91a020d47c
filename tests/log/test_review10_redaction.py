"""A database URL's password never reaches a log line, whether it is in the URL's
userinfo with characters the URL does not escape, or in its query string
(`?password=`, `?passwd=`: SQLAlchemy hands query parameters to the driver, so such a
URL works and its password is as secret as any)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from lens import log as prediction_log
from scarab.cli import app
from typer.testing import CliRunner

from tests.log.test_writer import _configure
from tests.predict.conftest import Call
from tests.predict.drawing import b64 as digit_b64
from tests.predict.drawing import draw_digit
from tests.support.moto_server import MotoServer
from tests.support.ports import free_port

pytestmark = pytest.mark.emulator
SECRET = "Zq9-s3cret-Xw"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://scarab@127.0.0.1:{port}/db?password=" + SECRET,
        "mysql://scarab@127.0.0.1:{port}/db?passwd=" + SECRET,
        "postgresql://scarab@127.0.0.1:{port}/db?sslmode=disable&password=" + SECRET,
        # '@' not percent-encoded: a parser reads the rest of the password as the host.
        "postgresql://scarab:ab@" + SECRET + "@127.0.0.1:{port}/db",
    ],
)
def test_no_spelling_of_the_password_reaches_the_log(
    url: str,
    aws: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    call: Call,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _configure(monkeypatch, url.format(port=free_port()))  # nothing listens there
    try:
        status, answer, _ = call("POST", "/predict/digits", {"image": digit_b64(draw_digit(5))})
    finally:
        prediction_log.reset()
    assert status == 200 and answer["label"] == 5
    out = capsys.readouterr().out
    failures = [r for r in caplog.records if r.getMessage() == "prediction log write failed"]
    assert failures, "the failed write is logged"
    everything = out + "\n".join(str(r.__dict__) for r in caplog.records)
    assert SECRET not in everything


@pytest.mark.parametrize("value", ["postgresql://scarab:ab@" + SECRET + "@db.example:5432/log"])
def test_secrets_set_refuses_an_unencoded_at_sign_unshown(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        ["secrets", "set", "prediction-db-url", "--stdin", "--endpoint-url", aws.url],
        input=value,
    )
    assert result.exit_code == 2, result.output
    assert "%40" in result.output and SECRET not in result.output
    ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=aws.url)
    assert ssm.describe_parameters()["Parameters"] == []  # nothing stored


def test_a_percent_encoded_at_sign_is_stored(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        ["secrets", "set", "prediction-db-url", "--stdin", "--endpoint-url", aws.url],
        input="postgresql://scarab:ab%40" + SECRET + "@db.example:5432/log",
    )
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
