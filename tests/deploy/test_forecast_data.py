"""A forecaster's observations pushed with `scarab models push-data` (kept in the
artifacts bucket) are what GET /forecast/{model_id} forecasts from, read by the models
function from S3 through the registry, sha256-checked, without a redeploy."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from lens.predict import loader, sources
from scarab.cli import app
from typer.testing import CliRunner

from tests.predict import conftest as predict_fixtures
from tests.predict.test_registry_table import call

cache_dir = predict_fixtures.cache_dir  # a private model cache per test
pytestmark = pytest.mark.emulator

PACKAGED = Path(__file__).resolve().parents[2] / "lambda/lens/predict/artifacts/bikes-3h.csv"


def shifted(days: int, factor: int) -> str:
    """The packaged observations, `days` later and with `factor` times the rentals."""
    lines = PACKAGED.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        at, count, *rest = line.split(",")
        when = datetime.fromisoformat(at) + timedelta(days=days)
        out.append(",".join([when.isoformat(), str(int(count) * factor), *rest]))
    return "\n".join(out) + "\n"


def test_pushed_observations_are_forecast_from(
    run_deploy, aws, project: Path, tmp_path: Path, cache_dir: Path, monkeypatch
) -> None:
    run_deploy()  # the registry, with the packaged bikes-3h live
    monkeypatch.setenv(sources.TABLE_ENV, "scarab-test-models")
    monkeypatch.setenv(loader.BUCKET_ENV, "scarab-test-models-123456789012-us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.url)
    sources.reset()
    loader.reset()
    status, before = call("GET", "/forecast/bikes-3h")
    assert status == 200, before
    assert before["observed_until"] == "2012-12-31T23:00:00"

    recent = tmp_path / "recent.csv"
    recent.write_text(shifted(days=7, factor=3))
    monkeypatch.chdir(project)
    pushed = CliRunner().invoke(
        app, ["models", "push-data", "bikes-3h", str(recent), "--endpoint-url", aws.url]
    )
    assert pushed.exit_code == 0, pushed.output
    sources.reset()  # as after the registry cache's TTL
    status, after = call("GET", "/forecast/bikes-3h")
    assert status == 200, after
    assert after["observed_until"] == "2013-01-07T23:00:00"
    assert after["forecast"][0]["at"] == "2013-01-08T00:00:00"
    assert after["forecast"] != before["forecast"]
    assert after["model_version"] == before["model_version"] == "1.0.0"
    sources.reset()
    loader.reset()
