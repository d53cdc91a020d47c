"""Versions and the `live` alias, deployed against the moto server: a version is
published only when a function's code or configuration changed, `live` moves to it, the
API and its permission target the alias, old versions are pruned, and `scarab versions`
lists them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scarab.config import load_config
from scarab.deploy.planner_versions import parse_version_description
from scarab.deploy.release_models import Release
from scarab.errors import ScarabError
from scarab.versions import list_versions, render_text

from tests.deploy.conftest import ANALYZE, MODELS, client

pytestmark = pytest.mark.emulator


def versions(aws: Any, function: str) -> dict[str, dict[str, Any]]:
    """The function's published versions by number ($LATEST left out)."""
    got = client("lambda", aws).list_versions_by_function(FunctionName=function)["Versions"]
    return {v["Version"]: v for v in got if v["Version"] != "$LATEST"}


def alias(aws: Any, function: str) -> dict[str, Any]:
    return dict(client("lambda", aws).get_alias(FunctionName=function, Name="live"))


def published(recorder: Any) -> int:
    return recorder.calls.count("lambda.PublishVersion")


def test_a_first_deploy_publishes_version_1_and_points_live_at_it(run_deploy, aws) -> None:
    result, recorder = run_deploy()
    assert published(recorder) == 2
    for fn in (ANALYZE, MODELS):
        [(number, version)] = versions(aws, fn).items()
        assert alias(aws, fn)["FunctionVersion"] == number == "1"
        recorded = parse_version_description(version["Description"])
        assert recorded["code"] == version["CodeSha256"]
        assert len(recorded["config"]) == 24 and recorded["scarab"] == "0.1.0"
        assert "commit" not in recorded  # the test project is not a git checkout
        assert len(version["Description"]) <= 256
    assert result.releases == [
        Release(function=ANALYZE, key="analyze", previous=None, published="1"),
        Release(function=MODELS, key="models", previous=None, published="1"),
    ]


def test_the_api_and_its_permission_target_the_alias(run_deploy, aws) -> None:
    result, _ = run_deploy()
    apigw, lam = client("apigateway", aws), client("lambda", aws)
    uris = {
        (res["path"], verb): apigw.get_integration(
            restApiId=result.rest_api_id, resourceId=res["id"], httpMethod=verb
        )["uri"]
        for res in apigw.get_resources(restApiId=result.rest_api_id)["items"]
        for verb in res.get("resourceMethods") or {}
        if verb != "OPTIONS"
    }
    assert uris and all(u.endswith(":live/invocations") for u in uris.values()), uris
    assert uris[("/analyze", "POST")].endswith(f"function:{ANALYZE}:live/invocations")
    assert uris[("/models", "GET")].endswith(f"function:{MODELS}:live/invocations")
    for fn in (ANALYZE, MODELS):
        policy = json.loads(lam.get_policy(FunctionName=fn, Qualifier="live")["Policy"])
        [grant] = [s for s in policy["Statement"] if s["Sid"] == "scarab-apigateway-invoke-live"]
        assert grant["Resource"].endswith(f"function:{fn}:live")
        assert grant["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(
            f":{result.rest_api_id}/test/*/*"
        )
        # No permission on the function itself: $LATEST is not what the API runs.
        assert not [s for s in policy["Statement"] if s["Sid"] == "scarab-apigateway-invoke"]


def test_nothing_changed_publishes_nothing(run_deploy, aws) -> None:
    run_deploy()
    again, recorder = run_deploy()
    assert again.up_to_date and recorder.mutating == [] and again.releases == []
    assert list(versions(aws, ANALYZE)) == ["1"]


def test_a_configuration_change_alone_publishes_that_function(run_deploy, aws) -> None:
    run_deploy()
    result, recorder = run_deploy({"functions.models.memory": 1024})
    assert published(recorder) == 1
    assert list(versions(aws, ANALYZE)) == ["1"] and alias(aws, ANALYZE)["FunctionVersion"] == "1"
    new = versions(aws, MODELS)["2"]
    assert new["MemorySize"] == 1024 and alias(aws, MODELS)["FunctionVersion"] == "2"
    old = parse_version_description(versions(aws, MODELS)["1"]["Description"])
    now = parse_version_description(new["Description"])
    assert now["code"] == old["code"] and now["config"] != old["config"]
    assert result.releases == [Release(MODELS, "models", previous="1", published="2")]


def test_a_code_change_publishes_a_version_of_the_new_code(run_deploy, aws, project) -> None:
    first, _ = run_deploy()
    source = project / "lambda" / "lens" / "errors.py"
    source.write_text(source.read_text() + "\n# a change\n")
    result, recorder = run_deploy()
    assert published(recorder) == 2
    for key, fn in (("analyze", ANALYZE), ("models", MODELS)):
        new = versions(aws, fn)["2"]
        assert new["CodeSha256"] == result.functions[key]["code_sha256"]
        assert new["CodeSha256"] != first.functions[key]["code_sha256"]
        assert alias(aws, fn)["FunctionVersion"] == "2"


def test_a_run_killed_between_update_and_publish_publishes_next_time(run_deploy, aws) -> None:
    run_deploy()
    with pytest.raises(ScarabError, match="InjectedFailure"):
        run_deploy({"functions.analyze.timeout": 45}, fail_on="PublishVersion")
    lam = client("lambda", aws)
    assert lam.get_function_configuration(FunctionName=ANALYZE)["Timeout"] == 45  # $LATEST
    assert list(versions(aws, ANALYZE)) == ["1"] and alias(aws, ANALYZE)["FunctionVersion"] == "1"
    # Nothing is left to update on $LATEST; live's version still records the old timeout.
    result, recorder = run_deploy({"functions.analyze.timeout": 45})
    assert "lambda.UpdateFunctionConfiguration" not in recorder.calls
    assert published(recorder) == 1
    assert versions(aws, ANALYZE)["2"]["Timeout"] == 45
    assert alias(aws, ANALYZE)["FunctionVersion"] == "2"
    assert result.plan[0].reason == "version 1 has other configuration"


def test_a_version_published_before_a_kill_is_reused_not_published_again(run_deploy, aws) -> None:
    run_deploy()
    with pytest.raises(ScarabError, match="InjectedFailure"):
        run_deploy({"functions.analyze.timeout": 45}, fail_on="UpdateAlias")
    assert list(versions(aws, ANALYZE)) == ["1", "2"]
    result, recorder = run_deploy({"functions.analyze.timeout": 45})
    assert published(recorder) == 0
    assert alias(aws, ANALYZE)["FunctionVersion"] == "2"
    assert result.releases == [Release(ANALYZE, "analyze", previous="1", published="2")]


def test_a_canary_keeps_live_on_the_old_version_and_weights_the_new(run_deploy, aws) -> None:
    first, _ = run_deploy(canary_percent=20)
    # A first deploy has nothing to keep serving: straight to 100%.
    assert alias(aws, MODELS)["FunctionVersion"] == "1"
    assert not (alias(aws, MODELS).get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert [r.canary_weight for r in first.releases] == [None, None]
    result, _ = run_deploy({"functions.models.memory": 1024}, canary_percent=20)
    live = alias(aws, MODELS)
    assert live["FunctionVersion"] == "1"
    assert live["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.2}
    assert result.releases == [
        Release(MODELS, "models", previous="1", published="2", canary_weight=0.2)
    ]


def test_keep_versions_prunes_older_versions_no_alias_uses(run_deploy, aws) -> None:
    run_deploy()
    for memory in (640, 768, 896):
        run_deploy({"functions.models.memory": memory})
    assert list(versions(aws, MODELS)) == ["1", "2", "3", "4"]
    # An alias that weights an old version (a split someone holds): never deleted.
    client("lambda", aws).update_alias(
        FunctionName=MODELS, Name="live", FunctionVersion="4",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.1}},
    )  # fmt: skip
    # Only the limit changes (moto numbers a version published after a deletion
    # len(versions) + 1, reusing a number, so this run publishes nothing; the plan
    # tests count a version published in the same run).
    result, recorder = run_deploy(
        {"functions.models.memory": 896, "functions.models.keep_versions": 2}
    )
    assert published(recorder) == 0
    assert [s.resource for s in result.plan] == [f"lambda.versions {MODELS}"]
    assert list(versions(aws, MODELS)) == ["1", "3", "4"]
    assert alias(aws, MODELS)["FunctionVersion"] == "4"
    assert list(versions(aws, ANALYZE)) == ["1"]  # the default keeps 10


def test_keep_versions_is_validated(project: Path) -> None:
    from scarab.errors import ConfigError

    with pytest.raises(ConfigError, match="keep_versions"):
        load_config(project, {"function.keep_versions": 0})


def test_versions_lists_newest_first_with_the_alias_weights(run_deploy, aws, project) -> None:
    run_deploy()
    run_deploy({"functions.models.memory": 1024}, canary_percent=25)
    config = load_config(project)
    data = list_versions(config, project_dir=project, endpoint_url=aws.url, function="models")
    assert list(data["functions"]) == ["models"]
    rows = data["functions"]["models"]["versions"]
    assert [r["version"] for r in rows] == ["2", "1"]
    assert rows[0]["aliases"] == [{"alias": "live", "weight": 0.25}]
    assert rows[1]["aliases"] == [{"alias": "live", "weight": 0.75}]
    assert rows[0]["code_sha256"] == versions(aws, MODELS)["2"]["CodeSha256"]
    text = render_text(data)
    assert text[0] == f"models ({MODELS})"
    assert text[2].split()[0] == "2" and text[2].endswith("live 25%")
    assert text[3].split()[0] == "1" and text[3].endswith("live 75%")
    with pytest.raises(ScarabError, match="no function 'nope'"):
        list_versions(config, project_dir=project, endpoint_url=aws.url, function="nope")


@pytest.mark.parametrize("percent", [0, 100, 150, -5, float("nan"), float("inf")])
def test_a_canary_that_is_not_a_share_is_refused_before_anything_changes(
    run_deploy, aws, percent: float
) -> None:
    from scarab.errors import ConfigError

    refused = r"--canary must be (more than 0|less than 100|a finite number between 0 and 100)"
    with pytest.raises(ConfigError, match=refused):
        run_deploy(canary_percent=percent)
    assert client("lambda", aws).list_functions()["Functions"] == []
