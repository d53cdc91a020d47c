"""Review 4: two stages whose names join to the same `<app>-<stage>` must not share resources.

App "shop-api" stage "dev" and app "shop" stage "api-dev" both name their function, role,
API and usage plan `shop-api-dev`. The resources of the first carry its tags
(`scarab:app=shop-api`, `scarab:stage=dev`), yet a deploy of the second adopts them: it
retags the function, rewrites the role's secret policy and rescopes the invoke permission
to its own stage, so the first stage's API can no longer call the function (and either
stage's destroy deletes both).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.deploy import deploy
from scarab.errors import ScarabError

from tests.deploy.conftest import CONFIG, Recorder, client, counted_session

BODY = CONFIG.replace('app = "scarab"\nstage = "test"\n', "")


def _project(root: Path, source: Path, app: str, stage: str) -> Path:
    shutil.copytree(source / "lambda", root / "lambda")
    (root / "scarab.toml").write_text(f'app = "{app}"\nstage = "{stage}"\n' + BODY)
    return root


@pytest.mark.emulator
def test_a_stage_does_not_take_over_another_stages_resources(
    aws, project: Path, tmp_path: Path
) -> None:
    first = _project(tmp_path / "first", project, "shop-api", "dev")
    second = _project(tmp_path / "second", project, "shop", "api-dev")
    deploy(
        load_config(first), project_dir=first, endpoint_url=aws.url,
        session=counted_session(Recorder()),
    )  # fmt: skip
    lam = client("lambda", aws)
    arn = lam.get_function(FunctionName="shop-api-dev-analyze")["Configuration"]["FunctionArn"]
    policy_before = lam.get_policy(FunctionName="shop-api-dev-analyze")["Policy"]
    recorder = Recorder()
    try:
        deploy(
            load_config(second), project_dir=second, endpoint_url=aws.url,
            session=counted_session(recorder),
        )  # fmt: skip
    except ScarabError as exc:
        # Refusing is right; it must say why and change nothing.
        assert "shop-api-dev-analyze" in str(exc)
        assert recorder.mutating == []
    tags = lam.list_tags(Resource=arn)["Tags"]
    assert (tags["scarab:app"], tags["scarab:stage"]) == ("shop-api", "dev")
    assert lam.get_policy(FunctionName="shop-api-dev-analyze")["Policy"] == policy_before
