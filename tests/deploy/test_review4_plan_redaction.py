"""Review 4: `scarab plan --json` must not show secret values it did not even set.

The function's environment is merged with what is live (scarab never drops variables it
did not set), so an update's `Environment.Variables` carries every live value, including
a Gemini key someone put on the function by hand (the function reads GOOGLE_API_KEY
first) or a database URL with a password. The plan prints those values verbatim.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scarab.cli import app
from typer.testing import CliRunner

from tests.deploy.conftest import client

HAND_SET_KEY = "AIzaSy-review4-hand-set-key-0123456789"
DB_PASSWORD = "review4-db-password"


@pytest.mark.emulator
def test_plan_json_does_not_show_secret_values_already_on_the_function(
    run_deploy, aws, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_deploy()
    lam = client("lambda", aws)
    env = lam.get_function_configuration(FunctionName="scarab-test-analyze")["Environment"][
        "Variables"
    ]
    env["GOOGLE_API_KEY"] = HAND_SET_KEY
    env["DATABASE_URL"] = f"postgres://app:{DB_PASSWORD}@db.internal/app"
    lam.update_function_configuration(
        FunctionName="scarab-test-analyze", Environment={"Variables": env}
    )
    toml = project / "scarab.toml"
    toml.write_text(toml.read_text().replace("memory = 512", "memory = 640"))
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["plan", "--json", "--endpoint-url", aws.url])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    (update,) = [
        c["params"]
        for s in doc["steps"]
        for c in s["calls"]
        if c["operation"] == "UpdateFunctionConfiguration"
        and c["params"]["FunctionName"] == "scarab-test-analyze"
    ]
    assert update["MemorySize"] == 640
    # The variable is still sent (scarab keeps what it did not set) but its value is not shown.
    assert "GOOGLE_API_KEY" in update["Environment"]["Variables"]
    assert HAND_SET_KEY not in result.output
    assert DB_PASSWORD not in result.output
