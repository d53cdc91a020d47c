"""Review 4: the calls `scarab plan --json` shows are the calls the executor makes.

A zip over Lambda's direct-upload limit (the lambda flavour with its wheels is ~60 MB)
goes through S3 as an `UploadArtifact`. The display renders it as one `s3.PutObject`,
but the executor uses boto3's `upload_file`, which splits anything over 8 MB into a
multipart upload: CreateMultipartUpload, UploadPart x N, CompleteMultipartUpload.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from scarab.aws import Aws
from scarab.deploy.display import render
from scarab.deploy.executor import Executor
from scarab.deploy.instructions import FileBytes, Step, UploadArtifact

from tests.deploy.conftest import Recorder, client, counted_session

ACCOUNT = "123456789012"  # the moto server's


@pytest.mark.emulator
def test_an_artifact_upload_makes_exactly_the_calls_the_plan_shows(aws, tmp_path: Path) -> None:
    body = tmp_path / "function.zip"
    # Deterministic bytes, over boto3's 8 MB multipart threshold (a real via-S3 zip is > 50 MB).
    body.write_bytes(hashlib.sha256(b"review4").digest() * (20 * 2**20 // 32))
    data = body.read_bytes()
    client("s3", aws).create_bucket(Bucket="scarab-artifacts-review4")
    upload = UploadArtifact(
        "scarab-artifacts-review4",
        "scarab-test/function.zip",
        FileBytes(str(body), hashlib.sha256(data).hexdigest(), len(data)),
        expected_owner=ACCOUNT,
    )
    step = Step("s3.object scarab-test/function.zip", "create", "missing", (upload,))
    planned = [f"{c['service']}.{c['operation']}" for c in render([step])[0]["calls"]]
    recorder = Recorder()
    Executor(Aws("us-east-1", endpoint_url=aws.url, session=counted_session(recorder))).execute(
        [step]
    )
    stored = client("s3", aws).get_object(
        Bucket="scarab-artifacts-review4", Key="scarab-test/function.zip"
    )
    assert stored["Body"].read() == data
    assert recorder.calls == planned
