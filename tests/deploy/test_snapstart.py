"""SnapStart in scarab.toml, the plan, the moto server and the exported template.

Moto (5.2) accepts SnapStart over HTTP and drops it (GetFunction always answers ApplyOn
"None") and has no provisioned concurrency API (a bare 404): so what the deploy sends is
checked on the calls it made to the server, what it would send to turn SnapStart off and
the provisioned-concurrency refusal on plans of hand-made observations.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from scarab.config import DERIVED_ENV, load_config
from scarab.deploy import make_aws, models
from scarab.deploy.export import FORMATS, render
from scarab.deploy.instructions import ApiCall
from scarab.deploy.planner import plan
from scarab.deploy.reader import Observed, read_provisioned_concurrency
from scarab.errors import ConfigError, ScarabError
from scarab.functions import FUNCTIONS

from tests.deploy.conftest import ANALYZE, MODELS, client
from tests.deploy.test_export import lint_matches, of_type, sam_translate
from tests.deploy.test_permissions import README, iam_actions, readme_actions
from tests.deploy.test_planner import converged, desired
from tests.support.moto_server import MotoServer


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "scarab.toml").write_text(text)
    return tmp_path


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    return str(info.value)


def _calls(steps: list[Any], operation: str) -> list[dict[str, Any]]:
    return [
        dict(i.params)
        for s in steps
        for i in s.instructions
        if isinstance(i, ApiCall) and i.operation == operation
    ]


# Config -------------------------------------------------------------------------------


def test_snapstart_is_off_by_default_and_per_function(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, ""))
    assert not any(cfg.function_config(fn.name).snapstart for fn in FUNCTIONS)
    cfg = load_config(_write(tmp_path, "[function]\nsnapstart = true\n"))
    assert all(cfg.function_config(fn.name).snapstart for fn in FUNCTIONS)
    cfg = load_config(
        _write(tmp_path, "[function]\nsnapstart = true\n[functions.models]\nsnapstart = false\n")
    )
    assert cfg.function_config("analyze").snapstart
    assert not cfg.function_config("models").snapstart
    cfg = load_config(_write(tmp_path, "[functions.analyze]\nsnapstart = true\n"))
    assert cfg.function_config("analyze").snapstart
    assert not cfg.function_config("models").snapstart


def test_an_image_package_with_snapstart_is_refused_with_advice(tmp_path: Path) -> None:
    msg = _error(tmp_path, '[function]\npackage = "image"\nsnapstart = true\n')
    assert msg == (
        "scarab.toml: [function] snapstart = true, but Lambda SnapStart works only for zip"
        ' packages, not container images: set [function] package = "zip", or remove'
        " snapstart."
    )
    # The --package flag too, and a per-function request names the function.
    (tmp_path / "scarab.toml").write_text("[functions.models]\nsnapstart = true\n")
    with pytest.raises(ConfigError, match=r"\[functions.models\] snapstart = true, but"):
        load_config(tmp_path, {"function.package": "image"})


def test_a_runtime_before_python312_with_snapstart_is_refused_with_advice(
    tmp_path: Path,
) -> None:
    msg = _error(
        tmp_path, '[function]\nruntime = "python3.11"\n[functions.analyze]\nsnapstart = true\n'
    )
    assert msg == (
        "scarab.toml: [functions.analyze] snapstart = true, but Lambda SnapStart for Python"
        ' needs python3.12 or newer and [function] runtime = "python3.11": set runtime ='
        ' "python3.12" (or newer), or remove snapstart.'
    )
    for runtime in ("python3.12", "python3.13"):
        text = f'[function]\nruntime = "{runtime}"\nsnapstart = true\n'
        assert load_config(_write(tmp_path, text)).function.snapstart


def test_snapstart_switched_off_where_it_cannot_run_is_fine(tmp_path: Path) -> None:
    text = '[function]\npackage = "image"\nsnapstart = true\n'
    text += "".join(f"[functions.{fn.name}]\nsnapstart = false\n" for fn in FUNCTIONS)
    load_config(_write(tmp_path, text))


def test_the_snapstart_variable_is_scarabs_own(tmp_path: Path) -> None:
    assert models.SNAPSTART_ENV in DERIVED_ENV
    msg = _error(tmp_path, '[function.environment]\nSCARAB_SNAPSTART = "1"\n')
    assert "SCARAB_SNAPSTART is reserved" in msg
    # The contract with lens: the variable lens.snapstart reads.
    from lens import snapstart as lens_snapstart

    assert lens_snapstart.SNAPSTART_ENV == models.SNAPSTART_ENV


# Plan ---------------------------------------------------------------------------------


def test_create_asks_for_snapstart_on_published_versions(tmp_path: Path) -> None:
    _write(tmp_path, "[functions.analyze]\nsnapstart = true\n")
    d = desired(tmp_path)
    creates = {p["FunctionName"]: p for p in _calls(plan(d, Observed()), "CreateFunction")}
    assert creates["scarab-dev-analyze"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert creates["scarab-dev-analyze"]["Environment"]["Variables"]["SCARAB_SNAPSTART"] == "1"
    # Off is Lambda's default: nothing is sent for the other function.
    assert "SnapStart" not in creates["scarab-dev-models"]
    assert "SCARAB_SNAPSTART" not in creates["scarab-dev-models"]["Environment"]["Variables"]


def _live_snapstart(obs: Any, key: str, apply_on: str) -> None:
    cfg = obs.units[key].function.config
    cfg["SnapStart"] = {"ApplyOn": apply_on, "OptimizationStatus": "Off"}


def test_a_toggle_is_a_configuration_change(tmp_path: Path) -> None:
    off = desired(tmp_path)
    _write(tmp_path, "[function]\nsnapstart = true\n")
    on = desired(tmp_path)
    # Converged with SnapStart off (as Lambda reports a function that never had it).
    obs = converged(off)
    for key in ("analyze", "models"):
        _live_snapstart(obs, key, "None")
    assert plan(off, obs) == []
    steps = plan(on, obs)
    updates = _calls(steps, "UpdateFunctionConfiguration")
    assert [u["SnapStart"] for u in updates] == [{"ApplyOn": "PublishedVersions"}] * 2
    reasons = [s.reason for s in steps if s.resource.endswith(" configuration")]
    assert all("SnapStart None -> PublishedVersions" in r for r in reasons), reasons
    # Live with SnapStart on: on is up to date, off turns it off with ApplyOn None.
    live_on = converged(on)
    for key in ("analyze", "models"):
        _live_snapstart(live_on, key, "PublishedVersions")
    assert plan(on, live_on) == []
    steps = plan(off, live_on)
    updates = _calls(steps, "UpdateFunctionConfiguration")
    assert [u["SnapStart"] for u in updates] == [{"ApplyOn": "None"}] * 2
    assert all("SCARAB_SNAPSTART" not in u["Environment"]["Variables"] for u in updates)


def test_a_function_that_never_had_snapstart_is_sent_none(tmp_path: Path) -> None:
    # A configuration update for another reason carries no SnapStart at all (runtimes
    # without SnapStart report none, and need not be told).
    d = desired(tmp_path)
    obs = converged(d)
    obs.units["analyze"].function.config["MemorySize"] = 128
    [update] = _calls(plan(d, obs), "UpdateFunctionConfiguration")
    assert "SnapStart" not in update


def test_provisioned_concurrency_with_snapstart_is_refused_before_any_change(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "[functions.analyze]\nsnapstart = true\n")
    d = desired(tmp_path)
    obs = converged(d)
    obs.units["analyze"].function.provisioned = ["live"]
    with pytest.raises(ScarabError) as info:
        plan(d, obs)
    assert str(info.value) == (
        "The function scarab-dev-analyze has provisioned concurrency configured (on live),"
        " and [function] / [functions.analyze] snapstart = true asks for SnapStart; Lambda"
        " does not run the two together. Either remove the provisioned concurrency ('aws"
        " lambda delete-provisioned-concurrency-config --function-name scarab-dev-analyze"
        " --qualifier live') and deploy again, or set snapstart = false for analyze and"
        " keep it."
    )
    # An image package (scarab.toml refuses it; a deploy asked for one directly) too.
    image = models.Code(package="image", image_tag="t", image_repository="r")
    fns = tuple(
        dataclasses.replace(f, code=image) if f.key == "analyze" else f for f in d.functions
    )
    with pytest.raises(ScarabError, match="only for zip packages, not container images"):
        plan(dataclasses.replace(d, functions=fns), Observed())
    # Without SnapStart, provisioned concurrency is the user's business.
    _write(tmp_path, "")
    off = desired(tmp_path)
    obs = converged(off)
    obs.units["analyze"].function.provisioned = ["live"]
    assert plan(off, obs) == []


# Against the moto server --------------------------------------------------------------


def test_deploy_sends_snapstart_and_reads_provisioned_concurrency(
    run_deploy: Any, aws: MotoServer, project: Path
) -> None:
    (project / "scarab.toml").write_text(
        (project / "scarab.toml").read_text() + "\n[functions.analyze]\nsnapstart = true\n"
    )
    _result, rec = run_deploy()
    created = {p["FunctionName"]: p for model, p in rec.requests if model.name == "CreateFunction"}
    assert created[ANALYZE]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert "SnapStart" not in created[MODELS]
    lam = client("lambda", aws)
    # Moto keeps no SnapStart: what it answers is off, so the next run plans it again.
    live = lam.get_function_configuration(FunctionName=ANALYZE)
    assert live["SnapStart"]["ApplyOn"] == "None"
    _again, rec = run_deploy()
    # Every call it made is in the README's permissions table.
    listed = readme_actions(README.read_text())
    needed = {a for m, p in rec.requests for a in iam_actions(m, p)}
    assert "lambda:ListProvisionedConcurrencyConfigs" in needed
    assert needed <= listed, needed - listed
    updated = [p for m, p in rec.requests if m.name == "UpdateFunctionConfiguration"]
    assert [(p["FunctionName"], p.get("SnapStart")) for p in updated] == [
        (ANALYZE, {"ApplyOn": "PublishedVersions"})
    ]
    # Only the function that wants SnapStart has its provisioned concurrency read.
    listed = {
        p["FunctionName"] for m, p in rec.requests if m.name == "ListProvisionedConcurrencyConfigs"
    }
    assert listed == {ANALYZE}
    env = lam.get_function_configuration(FunctionName=ANALYZE)["Environment"]["Variables"]
    assert env["SCARAB_SNAPSTART"] == "1"


def test_the_reader_finds_no_provisioned_concurrency_where_the_api_is_missing(
    run_deploy: Any, aws: MotoServer, project: Path
) -> None:
    # Moto has no provisioned concurrency API: its bare 404 reads as none configured
    # (a deploy with SnapStart must still work against it), as a missing function does.
    run_deploy()
    server = make_aws(load_config(project), endpoint_url=aws.url)
    assert read_provisioned_concurrency(server, ANALYZE) == []
    assert read_provisioned_concurrency(server, "no-such-function") == []


# Export -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_snapstart_is_exported_and_lints_clean(
    project: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "scarab.toml").write_text(
        (project / "scarab.toml").read_text() + "\n[functions.models]\nsnapstart = true\n"
    )
    template = render(load_config(project), project_dir=project, fmt=fmt)  # type: ignore[arg-type]
    found = lint_matches(template)
    assert found["E"] == [], found["E"]
    # cfn-lint's W2530 ("SnapStart is enabled but an AWS::Lambda::Version resource is not
    # attached") until the export publishes versions (h/versions' Version and alias
    # resources); nothing else.
    assert [w.split(" ", 1)[0] for w in found["W"]] in ([], ["W2530"]), found["W"]
    kind = "AWS::Serverless::Function" if fmt == "sam" else "AWS::Lambda::Function"
    functions = of_type(template, kind)
    assert functions["ModelsFunction"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert "SnapStart" not in functions["AnalyzeFunction"]
    if fmt == "sam":
        translated = of_type(sam_translate(template, monkeypatch), "AWS::Lambda::Function")
        assert translated["ModelsFunction"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}


# README ---------------------------------------------------------------------------------


def _readme_section() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return readme.split("## SnapStart\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_example_and_refusals_are_what_scarab_does(tmp_path: Path) -> None:
    section = _readme_section()
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = load_config(_write(tmp_path, example))
    assert cfg.function_config("analyze").snapstart
    assert not cfg.function_config("models").snapstart
    text = " ".join(section.split())  # the README wraps its lines
    image = _error(tmp_path, '[function]\npackage = "image"\nsnapstart = true\n')
    assert f"`{image}`" in text
    runtime = _error(tmp_path, '[function]\nruntime = "python3.11"\nsnapstart = true\n')
    quoted = text.split("a runtime before `python3.12`: `... ", 1)[1].split("`", 1)[0]
    assert runtime.endswith(quoted), (runtime, quoted)
    assert "aws lambda delete-provisioned-concurrency-config" in text
