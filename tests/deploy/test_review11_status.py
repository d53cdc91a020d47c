"""`scarab status` reflects the response cache and the prediction log (moto server): the
cache table as [cache] wants it and as found, and whether the functions log and whether
the log's secret is stored. A cache table deleted by hand, or the log's secret deleted
after the deploy that turned the log on, is drift a deploy repairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scarab.cli import app
from typer.testing import CliRunner

from tests.deploy.conftest import client
from tests.deploy.test_prediction_log_deploy import PARAM

pytestmark = pytest.mark.emulator
TABLE = "scarab-test-cache"
PASSWORD = "Pw-status-never-shown-4"


def _status(project: Path, aws: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["status", "--json", "--endpoint-url", aws.url])
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_status_shows_the_cache_table_and_its_drift(
    run_deploy: Any, aws: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_deploy()
    data = _status(project, aws, monkeypatch)
    assert data["cache"] == {
        "ttl_seconds": 300, "shared": True, "table": TABLE, "table_exists": True,
        "table_ttl_enabled": True,
    }  # fmt: skip
    assert data["drift"] == []
    client("dynamodb", aws).delete_table(TableName=TABLE)
    data = _status(project, aws, monkeypatch)
    assert data["cache"]["table_exists"] is False
    assert {"field": "cache.table", "live": "missing", "config": "present"} in data["drift"]
    text = CliRunner().invoke(app, ["status", "--endpoint-url", aws.url]).output
    assert f"cache table:    {TABLE} (missing)" in text and "cache.table: 'missing'" in text
    run_deploy()
    assert _status(project, aws, monkeypatch)["drift"] == []


def test_status_shows_the_log_and_a_secret_deleted_after_the_deploy(
    run_deploy: Any, aws: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_deploy()
    data = _status(project, aws, monkeypatch)
    assert data["prediction_log"] == {
        "enabled": True, "secret": PARAM, "on": False, "deployed": False,
    }  # fmt: skip
    ssm = client("ssm", aws)
    url = f"postgresql://scarab:{PASSWORD}@db.example:5432/log"
    ssm.put_parameter(Name=PARAM, Value=url, Type="SecureString")
    drift = _status(project, aws, monkeypatch)["drift"]
    assert {"field": "log.on", "live": False, "config": True} in drift
    run_deploy()
    data = _status(project, aws, monkeypatch)
    assert data["prediction_log"]["deployed"] is True and data["drift"] == []
    ssm.delete_parameter(Name=PARAM)
    data = _status(project, aws, monkeypatch)
    assert data["prediction_log"]["on"] is False
    assert {"field": "log.on", "live": True, "config": False} in data["drift"]
