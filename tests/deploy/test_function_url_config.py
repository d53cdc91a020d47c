"""[functions.<name>.url]: a function's Function URL, checked when scarab.toml is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.errors import ConfigError

from tests.deploy.test_config import write


def _error(tmp_path: Path, text: str) -> str:
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.exit_code == 2
    return str(info.value)


def test_a_url_with_cors_is_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[functions.models.url]\nauth = "NONE"\n'
        '[functions.models.url.cors]\nallow_origins = ["https://app.example.com"]\n'
        'allow_methods = ["GET", "POST"]\nallow_headers = ["content-type"]\nmax_age = 600\n',
    )
    cfg = load_config(tmp_path)
    url = cfg.function_url("models")
    assert url is not None and url.auth == "NONE" and url.cors is not None
    assert url.cors.allow_origins == ["https://app.example.com"]
    assert (url.cors.allow_methods, url.cors.allow_headers, url.cors.max_age) == (
        ["GET", "POST"], ["content-type"], 600,
    )  # fmt: skip
    assert cfg.function_url("analyze") is None
    # The URL is not one of the settings [function] shares.
    assert cfg.function_config("models") == cfg.function


def test_auth_is_required(tmp_path: Path) -> None:
    msg = _error(tmp_path, "[functions.models.url]\n")
    assert "functions.models.url.auth" in msg and "required" in msg.lower()


def test_auth_must_be_iam_or_none(tmp_path: Path) -> None:
    msg = _error(tmp_path, '[functions.models.url]\nauth = "PUBLIC"\n')
    assert "functions.models.url.auth" in msg and "AWS_IAM" in msg and "PUBLIC" in msg


def test_unknown_keys_are_errors_naming_the_allowed_ones(tmp_path: Path) -> None:
    msg = _error(tmp_path, '[functions.models.url]\nauth = "NONE"\ninvoke_mode = "STREAM"\n')
    assert "unknown key 'functions.models.url.invoke_mode'" in msg
    assert "auth, cors" in msg
    msg = _error(
        tmp_path,
        '[functions.models.url]\nauth = "NONE"\n[functions.models.url.cors]\n'
        'allow_origins = ["*"]\nallow_credentials = true\n',
    )
    assert "unknown key 'functions.models.url.cors.allow_credentials'" in msg
    assert "allow_headers, allow_methods, allow_origins, max_age" in msg


@pytest.mark.parametrize(
    ("cors", "where", "words"),
    [
        ('allow_origins = ["https://a.example.com/path"]', "allow_origins", "not an origin"),
        ("allow_origins = []", "allow_origins", "at least 1"),
        ('allow_origins = ["*"]\nallow_methods = ["FETCH"]', "allow_methods", "not a method"),
        ('allow_origins = ["*"]\nallow_headers = ["bad header"]', "allow_headers", "header"),
        ('allow_origins = ["*"]\nmax_age = 86401', "max_age", "86400"),
        ('allow_origins = ["*"]\nmax_age = -1', "max_age", "0"),
    ],
)
def test_bad_cors_is_refused(tmp_path: Path, cors: str, where: str, words: str) -> None:
    msg = _error(
        tmp_path, f'[functions.models.url]\nauth = "NONE"\n[functions.models.url.cors]\n{cors}\n'
    )
    assert f"functions.models.url.cors.{where}" in msg and words in msg


def test_a_url_for_an_unknown_function_is_refused(tmp_path: Path) -> None:
    msg = _error(tmp_path, '[functions.forecast.url]\nauth = "NONE"\n')
    assert "no function 'forecast'" in msg
