"""Review 9: the stage lock is an SSM parameter created with tags, and AWS authorizes
PutParameter with Tags only with ssm:AddTagsToResource as well (Systems Manager user
guide, "Tagging parameters"; CloudFormation's AWS::SSM::Parameter names both). The
permissions test must count it, and the README's table must list it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from scarab.config import load_config
from scarab.stage import open_stage

from tests.deploy.conftest import Recorder, counted_session
from tests.deploy.test_permissions import README, iam_actions, readme_actions
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator


def _put_parameter() -> Any:
    ssm = boto3.client("ssm", region_name="us-east-1")
    return ssm.meta.service_model.operation_model("PutParameter")


def test_a_tagged_put_parameter_needs_add_tags_to_resource() -> None:
    tags = {"Name": "/x", "Value": "v", "Tags": [{"Key": "scarab:app", "Value": "a"}]}
    assert iam_actions(_put_parameter(), tags) == {"ssm:PutParameter", "ssm:AddTagsToResource"}
    assert iam_actions(_put_parameter(), {"Name": "/x", "Value": "v"}) == {"ssm:PutParameter"}


def test_the_stage_lock_is_tagged_and_the_readme_lists_what_that_needs(
    aws: MotoServer, project: Path
) -> None:
    recorder = Recorder()
    config = load_config(project)
    session = counted_session(recorder)
    st = open_stage(config, project_dir=project, endpoint_url=aws.url, session=session)
    with st.lock("review9"):
        pass
    puts = [p for m, p in recorder.requests if m.name == "PutParameter"]
    assert puts and all(p.get("Tags") for p in puts), "the lock parameter is created with tags"
    needed = {a for m, p in recorder.requests for a in iam_actions(m, p)}
    missing = needed - readme_actions(README.read_text())
    assert not missing, f"README.md's permissions table lacks {sorted(missing)}"
