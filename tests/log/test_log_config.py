"""[log] in scarab.toml and the prediction log's secret: defaults, unknown keys, reserved
variables, and a URL that is not one refused without showing it."""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.cli import app
from scarab.config import load_config
from scarab.errors import ConfigError
from typer.testing import CliRunner

from tests.support.moto_server import MotoServer


def test_log_defaults_on_without_inputs(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.log.enabled is True and config.log.store_inputs is False
    (tmp_path / "scarab.toml").write_text("[log]\nenabled = false\nstore_inputs = true\n")
    config = load_config(tmp_path)
    assert config.log.enabled is False and config.log.store_inputs is True


def test_unknown_log_keys_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "scarab.toml").write_text('[log]\nurl = "postgresql://u:p@h/db"\n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "unknown key 'log.url'" in str(info.value)
    assert "allowed keys here: enabled, store_inputs" in str(info.value)


@pytest.mark.parametrize("name", ["SCARAB_LOG_ENABLED", "PREDICTION_DB_URL_PARAM"])
def test_the_logs_variables_are_reserved(tmp_path: Path, name: str) -> None:
    (tmp_path / "scarab.toml").write_text(f'[function.environment]\n{name} = "x"\n')
    with pytest.raises(ConfigError, match="reserved"):
        load_config(tmp_path)


@pytest.mark.emulator
@pytest.mark.parametrize("value", ["not a url Pw-123", "redis://u:Pw-123@host/0"])
def test_a_bad_database_url_is_refused_unshown(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        ["secrets", "set", "prediction-db-url", "--stdin", "--endpoint-url", aws.url],
        input=value,
    )
    assert result.exit_code == 2, result.output
    assert "not a database URL" in result.output and "Pw-123" not in result.output
    import boto3

    ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=aws.url)
    assert ssm.describe_parameters()["Parameters"] == []  # nothing stored
