"""`scarab rollback` and `scarab split` against the moto server, on a function a real
deploy made, with versions and the `live` alias published through boto3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scarab.aws import Aws
from scarab.cli import app
from scarab.naming import Names
from scarab.release.alias import rollback
from typer.testing import CliRunner

from tests.deploy.conftest import ANALYZE, MODELS, Recorder, client, counted_session
from tests.deploy.release_support import alias, deployed, make_live, publish

pytestmark = pytest.mark.emulator


@pytest.fixture
def stage(run_deploy, aws, project: Path, monkeypatch: pytest.MonkeyPatch):
    """A deployed stage whose analyze function has versions 1-3 and `live` on 3."""
    deployed(run_deploy, aws)
    published = publish(aws, 3)
    make_live(aws, "3")
    monkeypatch.chdir(project)
    return published


def scarab(*argv: str):
    return CliRunner().invoke(app, list(argv))


def test_rollback_moves_live_to_the_previous_version_in_one_call(stage, aws) -> None:
    recorder = Recorder()
    session_aws = Aws("us-east-1", endpoint_url=aws.url, session=counted_session(recorder))
    moved = rollback(session_aws, Names("scarab", "test"), "analyze", None)
    assert alias(aws) == ("2", {})
    assert recorder.mutating == ["lambda.UpdateAlias"]
    assert moved.as_dict()["before"]["version"] == "3"
    assert moved.as_dict()["after"] == {
        "version": "2",
        "code_sha256": stage[1]["CodeSha256"],
        "commit": "c0ffee2",
        "additional_versions": [],
    }


def test_rollback_prints_before_and_after_and_picks_the_only_aliased_function(stage, aws) -> None:
    result = scarab("rollback")  # only analyze has a live alias: no --function needed
    assert result.exit_code == 0, result.output
    sha3, sha2 = stage[2]["CodeSha256"][:12], stage[1]["CodeSha256"][:12]
    assert f"before: version 3 (code {sha3}, commit c0ffee3)" in result.output
    assert f"after:  version 2 (code {sha2}, commit c0ffee2)" in result.output
    assert alias(aws) == ("2", {})


def test_rollback_ends_a_split(stage, aws) -> None:
    client("lambda", aws).update_alias(
        FunctionName=ANALYZE, Name="live", RoutingConfig={"AdditionalVersionWeights": {"1": 0.2}}
    )
    result = scarab("rollback", "--function", "analyze", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["before"]["additional_versions"][0] | {"code_sha256": None} == {
        "version": "1", "code_sha256": None, "commit": "c0ffee1", "percent": 20.0,
    }  # fmt: skip
    assert data["after"]["version"] == "2" and data["after"]["additional_versions"] == []
    assert alias(aws) == ("2", {})


def test_rollback_to_a_version_and_nothing_to_roll_back_to(stage, aws) -> None:
    to = scarab("rollback", "--function", ANALYZE, "--to", "1")  # the full name works too
    assert to.exit_code == 0, to.output
    assert alias(aws) == ("1", {})
    nothing = scarab("rollback", "--function", "analyze")
    assert nothing.exit_code == 1
    assert "no version older than its live version 1 (published: 1, 2, 3)" in nothing.output
    assert "nothing to roll back to" in nothing.output
    assert "scarab rollback --function analyze --to 3" in nothing.output  # forward again
    unknown = scarab("rollback", "--function", "analyze", "--to", "9")
    assert unknown.exit_code == 1 and "no published version '9'" in unknown.output
    same = scarab("rollback", "--function", "analyze", "--to", "1")
    assert same.exit_code == 1 and "on version 1 already" in same.output
    assert alias(aws) == ("1", {})  # none of the refusals moved it
    assert "Traceback" not in unknown.output + same.output + nothing.output


def test_a_single_version_has_nothing_to_roll_back_to(run_deploy, aws, project, monkeypatch):
    deployed(run_deploy, aws)
    publish(aws, 1)
    make_live(aws, "1")
    monkeypatch.chdir(project)
    result = scarab("rollback")
    assert result.exit_code == 1
    assert "nothing to roll back to. Deploy a fix with 'scarab deploy' instead." in result.output


def test_two_aliased_functions_need_function_and_unknown_names_are_refused(stage, aws) -> None:
    publish(aws, 1, function=MODELS)
    make_live(aws, "1", function=MODELS)
    both = scarab("rollback")
    assert both.exit_code == 2
    assert "2 functions with a 'live' alias: give --function analyze or --function models" in (
        both.output
    )
    unknown = scarab("rollback", "--function", "nope")
    assert unknown.exit_code == 2 and "no such function; give one of analyze, models" in (
        unknown.output
    )
    assert alias(aws) == ("3", {})


def test_no_alias_yet_says_deploy(run_deploy, aws, project, monkeypatch) -> None:
    deployed(run_deploy, aws)
    monkeypatch.chdir(project)
    result = scarab("rollback")
    assert result.exit_code == 1 and "has a 'live' alias yet: run 'scarab deploy'" in result.output
    named = scarab("split", "--function", "models", "1", "10")
    assert named.exit_code == 1 and f"{MODELS} has no 'live' alias" in named.output


def test_split_on_and_off(stage, aws) -> None:
    on = scarab("split", "--function", "analyze", "2", "25")
    assert on.exit_code == 0, on.output
    assert alias(aws) == ("3", {"2": 0.25})
    assert "after:  version 3 (code" in on.output and "at 75% + version 2 (code" in on.output
    assert "commit c0ffee2) at 25%" in on.output
    again = scarab("split", "--function", "analyze", "1", "10%", "--json")
    assert again.exit_code == 0, again.output
    shown = json.loads(again.output)["after"]
    assert [(v["version"], v["percent"]) for v in shown["additional_versions"]] == [("1", 10.0)]
    assert alias(aws) == ("3", {"1": 0.1})  # one additional version: the new one replaced it
    off = scarab("split", "--function", "analyze", "--off")
    assert off.exit_code == 0, off.output
    assert alias(aws) == ("3", {})
    assert "before: version 3" in off.output and "at 90% + version 1" in off.output


# Each refusal on one deployed stage (a deploy per case would cost 3 s each).
REFUSALS = [
    (["2", "150"], 2, "less than 100"),
    (["2", "100"], 2, "rollback --function NAME --to VERSION"),
    (["2", "0"], 2, "more than 0"),
    (["2", "-5"], 2, "more than 0"),
    (["2", "nan"], 2, "finite number"),
    (["2", "inf"], 2, "finite number"),
    (["2", "half"], 2, "not 'half'"),
    (["3", "10"], 1, "Version 3 is scarab-test-analyze's live version already"),
    (["9", "10"], 1, "has no published version 9 (published: 1, 2, 3)"),
    (["$LATEST", "10"], 1, "'$LATEST' is not a published version"),
    (["2"], 2, "Give VERSION and PERCENT"),
    (["2", "10", "--off"], 2, "give no VERSION or PERCENT"),
]


def test_split_refuses_bad_weights_before_any_change(stage, aws) -> None:
    for argv, code, says in REFUSALS:
        result = scarab("split", "--function", "analyze", *argv)
        assert result.exit_code == code, (argv, result.output)
        assert says in result.output and "Traceback" not in result.output, (argv, result.output)
        assert alias(aws) == ("3", {}), argv
