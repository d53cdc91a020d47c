"""Adversarial review of issue 16's deploy part against the moto server.

Tests named test_FAILS_* reproduce a finding and fail on the reviewed main."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scarab.config import load_config
from scarab.deploy.destroy import destroy
from scarab.errors import ScarabError

from tests.deploy.conftest import client, project, run_deploy
from tests.deploy.test_uploads_jobs_deploy import BUCKET

__all__ = ["project", "run_deploy"]
pytestmark = pytest.mark.emulator


def _bucket_cors(aws: Any) -> list[dict[str, Any]] | None:
    """The bucket's CORS rules, or None when it has no CORS configuration."""
    from botocore.exceptions import ClientError

    try:
        return list(client("s3", aws).get_bucket_cors(Bucket=BUCKET)["CORSRules"])
    except ClientError as err:
        assert err.response["Error"]["Code"] == "NoSuchCORSConfiguration", err
        return None


def test_no_allowed_origins_deploys_a_bucket_without_cors(run_deploy: Any, aws: Any) -> None:
    """[function] allowed_origins = [] is valid config. S3 refuses a CORSRule with no
    AllowedOrigin (MalformedXML), so the bucket gets no CORS at all (it used to fail
    the whole deploy at the bucket); going from origins to none deletes the rule."""
    run_deploy({"function.allowed_origins": []})
    assert _bucket_cors(aws) is None
    run_deploy({"function.allowed_origins": ["https://a.example"]})
    [rule] = _bucket_cors(aws) or []
    assert rule["AllowedOrigins"] == ["https://a.example"]
    run_deploy({"function.allowed_origins": []})
    assert _bucket_cors(aws) is None


def test_a_wildcard_origin_reaches_the_bucket_as_post_only(run_deploy: Any, aws: Any) -> None:
    run_deploy({"function.allowed_origins": ["*"]})
    [rule] = client("s3", aws).get_bucket_cors(Bucket=BUCKET)["CORSRules"]
    assert rule["AllowedOrigins"] == ["*"] and rule["AllowedMethods"] == ["POST"]


def test_destroy_in_another_region_leaves_this_region_s_bucket(
    run_deploy: Any, aws: Any, project: Path
) -> None:
    run_deploy()
    s3 = client("s3", aws)
    s3.put_object(Bucket=BUCKET, Key="uploads/" + "a" * 32, Body=b"x")
    config = load_config(project, {"region": "eu-west-1"})
    with pytest.raises(ScarabError, match="deployed in us-east-1"):
        destroy(config, project_dir=project, endpoint_url=aws.url)
    assert BUCKET in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == [
        "uploads/" + "a" * 32
    ]


def test_destroy_then_deploy_again_converges(run_deploy: Any, aws: Any, project: Path) -> None:
    run_deploy()
    destroy(load_config(project), project_dir=project, endpoint_url=aws.url)
    run_deploy()
    again, recorder = run_deploy()
    assert again.plan == [], [s.describe() for s in again.plan]
    assert recorder.mutating == []
