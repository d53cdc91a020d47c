"""Run a plan: the one module of the deploy core that changes anything in AWS.

It decides nothing. Each instruction goes to `_do_<type>`: resolve its refs, make the
call, keep the output it names. Retries of transient conflicts live in `scarab.aws.call`.
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore import xform_name

from scarab.aws import Aws, call, error_code, explain
from scarab.deploy.instructions import (
    ApiCall,
    EmptyBucket,
    FileBytes,
    Instruction,
    Now,
    PushImage,
    Ref,
    Step,
    Sub,
    UploadArtifact,
    WaitForEndpoint,
    WaitForFunction,
    WaitForTable,
)
from scarab.deploy.waiters import wait_for_endpoint, wait_for_function, wait_for_table
from scarab.errors import ScarabError

# Lambda cannot assume a role for a few seconds after IAM creates it.
ROLE_NOT_READY = "cannot be assumed by Lambda"
# Nor see a policy just put on it: a VPC function's network-interface grant (AWS answers
# "The provided execution role does not have permissions to call CreateNetworkInterface
# on EC2" until IAM has propagated it).
ENI_GRANT_NOT_READY = "does not have permissions to call CreateNetworkInterface"
# Nor the jobs' queue grant: a function's DeadLetterConfig ("... does not have permissions
# to call SendMessage on SQS") and the queue's event source mapping (ReceiveMessage).
SQS_GRANT_NOT_READY = "does not have permissions to call"
# SageMaker's CreateModel checks that it can assume the execution role, which a role IAM
# has just created cannot be for a few seconds either.
SAGEMAKER_ROLE_NOT_READY = "Could not assume role"
# A deletion whose target is already gone has nothing left to do.
GONE = frozenset(
    {
        "NotFoundException",
        "ResourceNotFoundException",
        "NoSuchEntity",
        "NoSuchEntityException",
        "RepositoryNotFoundException",
        "NoSuchBucket",
        # SQS: its JSON protocol's code, and the query protocol's.
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)
_SUB = re.compile(r"\$\{([^}]+)\}")


def resolve(value: Any, values: dict[str, Any]) -> Any:
    """`value` with every Ref, Sub and FileBytes replaced by what it stands for."""
    if isinstance(value, Ref):
        return _lookup(values, value.name)
    if isinstance(value, Sub):
        return _SUB.sub(lambda m: str(_lookup(values, m.group(1))), value.template)
    if isinstance(value, FileBytes):
        return Path(value.path).read_bytes()
    if isinstance(value, Now):
        return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        # A key may be a Ref too: a weight of the version a step before published.
        return {
            (resolve(k, values) if isinstance(k, Ref) else k): resolve(v, values)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [resolve(v, values) for v in value]
    return value


def _lookup(values: dict[str, Any], name: str) -> Any:
    if name not in values:
        raise ScarabError(f"The plan uses {name} before any step produced it (a scarab bug).")
    return values[name]


def dig(data: Any, path: str) -> Any:
    """The value at a dotted key path ("id", "Role.Arn")."""
    for part in path.split("."):
        data = data[part]
    return data


class Executor:
    """Runs steps against AWS; `values` starts with the ids the reader found."""

    def __init__(self, aws: Aws, values: dict[str, Any] | None = None) -> None:
        self.aws = aws
        self.values: dict[str, Any] = dict(values or {})

    def execute(
        self,
        steps: list[Step],
        *,
        progress: Callable[[str], None] | None = None,
        after_step: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """Run every step; on failure, say which step failed and that a re-run resumes."""
        for i, step in enumerate(steps, 1):
            if progress:
                progress(f"[{i}/{len(steps)}] {step.describe()}")
            try:
                for instruction in step.instructions:
                    self.run(instruction)
            except Exception as exc:
                failed = ScarabError(
                    f"{step.action} {step.resource} failed: {explain(exc)}\nNothing is left"
                    " half-done that a re-run cannot finish: run the same command again."
                )
                raise failed from None
            finally:
                if after_step:
                    after_step(self.values)

    def run(self, instruction: Instruction) -> None:
        getattr(self, f"_do_{xform_name(type(instruction).__name__)}")(instruction)

    def _do_api_call(self, ins: ApiCall) -> None:
        method = getattr(self.aws.client(ins.service), xform_name(ins.operation))
        params = resolve(ins.params, self.values)
        retry: dict[str, Any] = {}
        if ins.retry_while_role_not_ready:
            retry = {
                "retry_message": (
                    ROLE_NOT_READY,
                    ENI_GRANT_NOT_READY,
                    SAGEMAKER_ROLE_NOT_READY,
                    SQS_GRANT_NOT_READY,
                ),
                "attempts": 12,
            }
        try:
            out = call(method, retry_codes=ins.retry_codes, **retry, **params)
        except Exception as exc:
            if ins.missing_ok and error_code(exc) in GONE:
                return
            raise
        if ins.output_var is not None:
            self.values[ins.output_var] = dig(out, ins.output_path or "")

    def _do_wait_for_function(self, ins: WaitForFunction) -> None:
        wait_for_function(self.aws, ins.function_name)

    def _do_wait_for_table(self, ins: WaitForTable) -> None:
        wait_for_table(self.aws, ins.table_name)

    def _do_wait_for_endpoint(self, ins: WaitForEndpoint) -> None:
        wait_for_endpoint(self.aws, ins.endpoint_name, ins.endpoint_config, ins.timeout)

    def _do_push_image(self, ins: PushImage) -> None:
        from scarab.artifacts.image import build_image, push_image

        build = build_image(Path(ins.project_dir), ins.architecture, ins.dockerfile)
        ecr = self.aws.client("ecr")
        token = call(ecr.get_authorization_token)["authorizationData"][0]
        password = base64.b64decode(token["authorizationToken"]).decode().partition(":")[2]
        registry = token["proxyEndpoint"].removeprefix("https://")
        push_image(build, ins.repository, registry, password)

    def _do_upload_artifact(self, ins: UploadArtifact) -> None:
        # One PutObject (S3 takes up to 5 GB in one; Lambda zips stop at 250 MB unzipped),
        # exactly the call the plan shows; upload_file would switch to a multipart upload.
        # Bytes, not a file object: a retried call must send the whole body again.
        call(
            self.aws.client("s3").put_object,
            Bucket=ins.bucket,
            Key=ins.key,
            Body=Path(ins.body.path).read_bytes(),
            ExpectedBucketOwner=ins.expected_owner,
        )

    def _do_empty_bucket(self, ins: EmptyBucket) -> None:
        s3 = self.aws.client("s3")
        owner = {"ExpectedBucketOwner": ins.expected_owner}
        try:
            pages = list(
                s3.get_paginator("list_object_versions").paginate(Bucket=ins.bucket, **owner)
            )
        except Exception as exc:
            if error_code(exc) in GONE | {"NoSuchBucket"}:
                return
            raise
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for page in pages
            for kind in ("Versions", "DeleteMarkers")
            for v in page.get(kind, [])
        ]
        for start in range(0, len(doomed), 1000):  # DeleteObjects takes up to 1000
            batch = {"Objects": doomed[start : start + 1000], "Quiet": True}
            call(
                s3.delete_objects,
                Bucket=ins.bucket,
                Delete=batch,
                ExpectedBucketOwner=ins.expected_owner,
            )
