"""Fixtures for the deploy tool's tests: a throwaway project and counted AWS sessions."""

from __future__ import annotations

import datetime
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from scarab.aws import is_mutating
from scarab.config import ScarabConfig, load_config
from scarab.deploy import DeployResult, deploy

from tests.support.moto_server import MotoServer

REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
app = "scarab"
stage = "test"

[function]
memory = 512
timeout = 30
allowed_origins = ["http://localhost:3000"]
environment = { LOG_LEVEL = "DEBUG", FEATURE_X = "on" }
models = { fast = "gemini-2.5-flash-lite", deep = "gemini-2.5-pro" }

[api]
throttle_rate = 5
throttle_burst = 10
quota_limit = 500
quota_period = "DAY"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory: a copy of the function source plus a scarab.toml."""
    root = tmp_path / "proj"
    shutil.copytree(
        REPO / "lambda",
        root / "lambda",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    (root / "scarab.toml").write_text(CONFIG)
    # Share the pip cache of the real checkout so the lambda-flavor build runs once.
    monkeypatch.setenv("SCARAB_CACHE_DIR", str(REPO / ".scarab" / "cache"))
    return root


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry waits sized for an emulator that never stays busy (the logic is unchanged)."""
    import scarab.aws

    monkeypatch.setattr(scarab.aws, "RETRY_BASE_DELAY", 0.05)


@dataclass
class Recorder:
    """Counts the AWS operations made through a session (botocore event hook)."""

    calls: list[str] = field(default_factory=list)
    fail_at: int | None = None  # fail the N-th mutating call (1-based)
    fail_on: str | None = None  # fail the first call of this operation (e.g. PublishVersion)
    # Each call's operation model and its parameters as the caller passed them.
    requests: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    _mutations: int = 0

    def __call__(self, model: Any, **_: Any) -> None:
        op = model.name
        self.calls.append(f"{model.service_model.service_name}.{op}")
        if op == self.fail_on:
            self.fail_on = None
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "InjectedFailure", "Message": "injected by the test"}}, op
            )
        if is_mutating(op):
            self._mutations += 1
            if self.fail_at is not None and self._mutations == self.fail_at:
                raise botocore.exceptions.ClientError(
                    {"Error": {"Code": "InjectedFailure", "Message": "injected by the test"}},
                    op,
                )

    def parameters(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """botocore's before-parameter-build hook: what was asked, before serialization."""
        self.requests.append((model, dict(params)))

    @property
    def mutating(self) -> list[str]:
        return [c for c in self.calls if is_mutating(c.split(".", 1)[1])]


def counted_session(recorder: Recorder) -> boto3.Session:
    session = boto3.Session(region_name="us-east-1")
    session.events.register("before-call", recorder)
    session.events.register("before-parameter-build", recorder.parameters)
    return session


@pytest.fixture
def run_deploy(
    aws: MotoServer, project: Path
) -> Iterator[Callable[..., tuple[DeployResult, Recorder]]]:
    """Deploy the project to the moto server; returns the result and its call record."""

    def run(
        overrides: dict[str, Any] | None = None,
        fail_at: int | None = None,
        fail_on: str | None = None,
        **kwargs: Any,
    ) -> tuple[DeployResult, Recorder]:
        config: ScarabConfig = load_config(project, overrides)
        recorder = Recorder(fail_at=fail_at, fail_on=fail_on)
        result = deploy(
            config,
            project_dir=project,
            endpoint_url=aws.url,
            session=counted_session(recorder),
            **kwargs,
        )
        return result, recorder

    yield run


def client(service: str, moto: MotoServer) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=moto.url)


# The role and permission a deploy of the CONFIG above must leave, written out in full.
EXPECTED_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
# The functions of the test project's stage (app scarab, stage test) and their roles.
ANALYZE = "scarab-test-analyze"
MODELS = "scarab-test-models"
ANALYZE_ROLE, MODELS_ROLE = f"{ANALYZE}-role", f"{MODELS}-role"


def expected_logs_policy(function: str) -> dict[str, Any]:
    """The inline policy that writes to `function`'s own log group and nothing else."""
    group = f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{function}:*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": group,
            }
        ],
    }


EXPECTED_LOGS_POLICY = expected_logs_policy(ANALYZE)
EXPECTED_SSM_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ReadGeminiKey",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": (
                "arn:aws:ssm:us-east-1:123456789012:parameter/scarab/scarab/test/gemini-api-key"
            ),
        }
    ],
}
# Both roles: the shared response cache's table, items in and out, nothing else.
EXPECTED_CACHE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "UseResponseCache",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
            "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/scarab-test-cache",
        }
    ],
}


def expected_permission(api_id: str, stage: str, function: str = "analyze") -> list[dict[str, Any]]:
    """The resource policy of function `function`'s `live` alias: API Gateway may invoke
    it from this API's stage."""
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:scarab-{stage}-{function}"
    return [
        {
            "Sid": "scarab-apigateway-invoke-live",
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": f"{arn}:live",
            "Condition": {
                "ArnLike": {
                    "AWS:SourceArn": (
                        f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/{stage}/*/*"
                    )
                }
            },
        }
    ]


def inline_policies(iam: Any, role: str) -> dict[str, Any]:
    """Every inline policy of `role`, name -> document."""
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    return {n: iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"] for n in names}


def permission(lam: Any, function: str, qualifier: str | None = "live") -> list[dict[str, Any]]:
    """The statements of the resource policy of the function's `live` alias (or of
    `qualifier`; None: the function itself). moto keeps one policy for all of them."""
    alias = {"Qualifier": qualifier} if qualifier else {}
    got = lam.get_policy(FunctionName=function, **alias)
    return list(json.loads(got["Policy"])["Statement"])


# The stage lock of the CONFIG above (deploy/lock.py), and a holder seeded as if a run on
# another machine took it `minutes_ago`.
LOCK = "/scarab/scarab/test/lock"


def seed_lock(
    aws: Any, minutes_ago: float, token: str = "seeded", host: str = "runner-1", pid: int = 4242
) -> str:
    started = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=minutes_ago)
    holder = {
        "owner": "ci",
        "host": host,
        "pid": pid,
        "command": "deploy",
        "started": started.isoformat(timespec="seconds"),
        "token": token,
    }
    value = json.dumps(holder)
    client("ssm", aws).put_parameter(Name=LOCK, Value=value, Type="String")
    return value
