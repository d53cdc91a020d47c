"""A plan as data: frozen instructions grouped into steps.

The planner emits these; an executor (deploy/executor.py) runs them, the display
(deploy/display.py) renders them. An instruction never decides anything: every choice
was made by the planner, so a plan can be compared in a test, printed, and reviewed.

Values in `ApiCall.params` may be:
- `Ref("name")`: a value an earlier instruction kept (`output_var`), or an id the
  reader found and the deploy seeded before running (e.g. `rest_api_id`);
- `Sub("arn:...:${rest_api_id}/dev/*/*")`: a string with refs substituted;
- `FileBytes(...)`: a file's bytes, read only when the call is made (a zip);
- `NOW`: the time the call is made (ISO 8601 UTC, seconds), e.g. a record's created_at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Ref:
    """The value kept under `name` by an earlier instruction (or seeded from the reader)."""

    name: str


@dataclass(frozen=True)
class Sub:
    """A string whose `${name}` parts are replaced by the values kept under those names."""

    template: str


@dataclass(frozen=True)
class Now:
    """The time the call is made, as ISO 8601 UTC to the second ("2026-12-02T01:02:03Z")."""


NOW = Now()


@dataclass(frozen=True)
class FileBytes:
    """The bytes of a file (a function zip, a model), read when the call is made."""

    path: str
    sha256: str
    size: int
    kind: str = "zip"  # what the display calls it: zip, model, data


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call: `service`'s `operation` (PascalCase, as AWS spells it).

    `output_var` keeps the answer's value at `output_path` (a dotted key path such as
    "id" or "Role.Arn") under that name for later instructions.
    """

    service: str
    operation: str
    params: dict[str, Any] = field(default_factory=dict)
    output_var: str | None = None
    output_path: str | None = None
    # A freshly created IAM role cannot be assumed by Lambda for a few seconds: retry
    # while Lambda says so (the retry lives in the executor, the decision here).
    retry_while_role_not_ready: bool = False
    # Deletion: a target that is already gone is success (a re-run, or a race).
    missing_ok: bool = False
    # Error codes that clear by themselves for this call (a cluster still draining its
    # service, a security group whose network interfaces are being released): retried
    # with the executor's backoff.
    retry_codes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class WaitForFunction:
    """Wait until the function is Active and no update is in progress (read-only polls)."""

    function_name: str


@dataclass(frozen=True)
class WaitForTable:
    """Wait until the DynamoDB table is ACTIVE (read-only polls)."""

    table_name: str


@dataclass(frozen=True)
class WaitForEndpoint:
    """Wait until the SageMaker endpoint is InService on `endpoint_config` (read-only
    polls, at most `timeout` seconds); a failed create or update stops the run."""

    endpoint_name: str
    endpoint_config: str
    timeout: float = 1800.0


@dataclass(frozen=True)
class PushImage:
    """Build an image of lambda/ (the function's or the server's) with docker and push it
    to the ECR repository.

    Several calls in one: an ECR authorization token, docker build, login, tag, push.
    """

    project_dir: str
    architecture: str
    repository: str  # <account>.dkr.ecr.<region>.amazonaws.com/<name>
    tag: str
    # Which image of lambda/: the function's (Dockerfile) or the server's (server.Dockerfile).
    dockerfile: str = "Dockerfile"


@dataclass(frozen=True)
class UploadArtifact:
    """Upload a file to S3 (multipart when large), naming the bucket's expected owner."""

    bucket: str
    key: str
    body: FileBytes
    expected_owner: str


@dataclass(frozen=True)
class EmptyBucket:
    """Delete every object version and delete marker of a bucket (so it can be deleted):
    ListObjectVersions pages and DeleteObjects batches, naming the expected owner."""

    bucket: str
    expected_owner: str


Instruction = (
    ApiCall
    | WaitForFunction
    | WaitForTable
    | WaitForEndpoint
    | PushImage
    | UploadArtifact
    | EmptyBucket
)


@dataclass(frozen=True)
class Step:
    """One change to one resource, the reason it is needed, and the instructions doing it."""

    resource: str  # "<kind> <name>", e.g. "lambda.function scarab-dev"
    action: Action
    reason: str
    instructions: tuple[Instruction, ...] = ()

    def describe(self) -> str:
        return f"{self.action:<6} {self.resource}: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {"resource": self.resource, "action": self.action, "reason": self.reason}

    @property
    def calls(self) -> list[ApiCall]:
        """The plain API calls among the instructions (tests compare these)."""
        return [i for i in self.instructions if isinstance(i, ApiCall)]
