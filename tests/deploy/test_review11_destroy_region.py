"""`scarab destroy --region` of another region than the stage's (moto server), with the
response cache and the prediction log on: refused while the state record says where the
stage lives; with the record lost, the live region's cache table, the log's secret and
each role's policies (the cache's and the log's included) are left exactly as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scarab.deploy.state import state_path

from tests.deploy.conftest import ANALYZE_ROLE, MODELS_ROLE, client, inline_policies
from tests.deploy.test_prediction_log_deploy import LOG_POLICY, PARAM, URL
from tests.deploy.test_safety import cli

pytestmark = pytest.mark.emulator
TABLE = "scarab-test-cache"


def _live(aws: Any) -> dict[str, Any]:
    iam = client("iam", aws)
    return {
        "tables": client("dynamodb", aws).list_tables()["TableNames"],
        "secret": client("ssm", aws).get_parameter(Name=PARAM, WithDecryption=True)["Parameter"][
            "Value"
        ],
        "roles": {role: inline_policies(iam, role) for role in (ANALYZE_ROLE, MODELS_ROLE)},
    }


def test_destroy_in_another_region_leaves_the_live_stages_cache_log_and_roles(
    run_deploy: Any, aws: Any, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client("ssm", aws).put_parameter(Name=PARAM, Value=URL, Type="SecureString")
    run_deploy()
    before = _live(aws)
    assert TABLE in before["tables"] and before["secret"] == URL
    for policies in before["roles"].values():
        assert {LOG_POLICY, "scarab-use-cache"} <= set(policies)
    monkeypatch.chdir(project)

    code, output = cli("destroy", "--yes", "--region", "us-west-2")
    assert code != 0 and "deployed in us-east-1" in output, output
    assert _live(aws) == before

    state_path(project, "test", aws.url).unlink()  # another machine, or the record lost
    code, output = cli("destroy", "--yes", "--region", "us-west-2")
    assert "scarab destroy --region us-east-1" in output, output
    assert URL not in output
    assert _live(aws) == before
