"""scarab.toml validation: errors name the key and the allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.cli import app
from scarab.config import find_project_dir, load_config
from scarab.errors import ConfigError
from typer.testing import CliRunner


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "scarab.toml").write_text(text)
    return tmp_path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    cfg = load_config(tmp_path)
    assert cfg.function.memory == 512 and cfg.function.timeout == 30
    assert cfg.function.package == "zip" and cfg.function.architecture == "x86_64"
    assert cfg.resolved_region == "eu-west-1"
    assert cfg.secret_name == "/scarab/scarab/dev/gemini-api-key"


def test_unknown_key_names_the_key_and_the_allowed_ones(tmp_path: Path) -> None:
    write(tmp_path, "[function]\nmemroy = 1024\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    msg = str(info.value)
    assert "function.memroy" in msg
    assert "memory" in msg and "timeout" in msg and "architecture" in msg


def test_bad_value_names_the_allowed_values(tmp_path: Path) -> None:
    write(tmp_path, '[function]\narchitecture = "arm"\n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    msg = str(info.value)
    assert "function.architecture" in msg and "x86_64" in msg and "arm64" in msg
    assert info.value.exit_code == 2


def test_reserved_environment_names_are_refused(tmp_path: Path) -> None:
    write(tmp_path, '[function.environment]\nALLOWED_ORIGINS = "*"\n')
    with pytest.raises(ConfigError, match="ALLOWED_ORIGINS is reserved"):
        load_config(tmp_path)


def test_flags_override_the_file_and_the_file_overrides_the_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    write(tmp_path, 'stage = "dev"\nregion = "us-west-2"\n[function]\npackage = "image"\n')
    cfg = load_config(tmp_path, {"stage": "prod", "function.package": "zip", "region": None})
    assert cfg.stage == "prod" and cfg.function.package == "zip"
    assert cfg.resolved_region == "us-west-2"


def test_find_project_dir_walks_up(tmp_path: Path) -> None:
    write(tmp_path, "")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_project_dir(nested) == tmp_path.resolve()


def test_repo_config_is_valid() -> None:
    cfg = load_config(Path(__file__).resolve().parents[2])
    assert cfg.app == "scarab"


def test_cli_bad_config_exits_2_with_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, '[api]\nquota_period = "YEAR"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["deploy", "--dry-run", "--endpoint-url", "http://127.0.0.1:9"]
    )
    assert result.exit_code == 2
    assert "api.quota_period" in result.output and "DAY" in result.output
    assert "Traceback" not in result.output
