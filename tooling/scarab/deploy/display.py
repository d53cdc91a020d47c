"""The display-only executor: renders a plan's exact calls and makes none of them.

`scarab plan --json`, `deploy --dry-run` and `destroy --dry-run` print what this
returns. Refs show as "${name}", a zip as "<zip 12.3 MB sha256 ...>", and secret
values (a stored secret, an API key's value) as "<redacted>".

So that a ref and literal text never look alike, a literal "${" (in a plain value, or in
the text of a Sub around its refs) shows as "${!", as in CloudFormation's Fn::Sub: in a
shown string, "${!" is the text "${" and any other "${" opens a ref, which the brace that
balances it closes (a ref's name may hold an API path's "{model_id}").
"""

from __future__ import annotations

from typing import Any

from scarab.config import secret_looking
from scarab.deploy.executor import _SUB as SUB_REF  # what the executor substitutes in a Sub
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

REDACTED = "<redacted>"
# The parameters that carry a secret in the APIs scarab may call: a stored secret's
# value, an API key's value.
SECRET_PARAMS: dict[tuple[str, str], frozenset[str]] = {
    ("ssm", "PutParameter"): frozenset({"Value"}),
    ("secretsmanager", "CreateSecret"): frozenset({"SecretString", "SecretBinary"}),
    ("secretsmanager", "PutSecretValue"): frozenset({"SecretString", "SecretBinary"}),
    ("apigateway", "CreateApiKey"): frozenset({"value"}),
    ("apigateway", "ImportApiKeys"): frozenset({"body"}),
}


def literal(text: str) -> str:
    """Literal text as shown: each "${" as "${!", so that it cannot be read as a ref."""
    return text.replace("${", "${!")


def show_sub(sub: Sub) -> str:
    """A Sub as shown: its refs as "${name}", the text around them escaped."""
    shown, end = [], 0
    for match in SUB_REF.finditer(sub.template):
        shown += [literal(sub.template[end : match.start()]), match.group(0)]
        end = match.end()
    return "".join([*shown, literal(sub.template[end:])])


def show(value: Any) -> Any:
    """A plan value as JSON-ready data, with refs and blobs described."""
    if isinstance(value, Ref):
        return "${" + value.name + "}"
    if isinstance(value, Sub):
        return show_sub(value)
    if isinstance(value, str):
        return literal(value)
    if isinstance(value, FileBytes):
        return f"<{value.kind} {value.size / 2**20:.1f} MB sha256 {value.sha256[:12]}>"
    if isinstance(value, Now):
        return "<now>"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {(show(k) if isinstance(k, Ref) else k): show(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [show(v) for v in value]
    return value


def shown_params(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """An API call's parameters for display, secret values redacted."""
    secret = SECRET_PARAMS.get((service, operation), frozenset())
    shown = {k: REDACTED if k in secret else show(v) for k, v in params.items()}
    environment = shown.get("Environment")
    if service == "lambda" and isinstance(environment, dict):
        shown["Environment"] = _shown_environment(environment)
    return shown


def _shown_environment(environment: dict[str, Any]) -> dict[str, Any]:
    """The function's variables with secret-looking values redacted: the environment is
    merged with what is live, so it may carry a key someone set on the function by hand."""
    variables = environment.get("Variables")
    if not isinstance(variables, dict):
        return environment
    return {
        **environment,
        "Variables": {
            name: REDACTED if secret_looking(name, str(value)) else value
            for name, value in variables.items()
        },
    }


def _call(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"service": service, "operation": operation, "params": params}


def render_instruction(ins: Instruction) -> list[dict[str, Any]]:
    """The AWS calls one instruction makes, as {"service", "operation", "params"}."""
    if isinstance(ins, ApiCall):
        return [
            _call(ins.service, ins.operation, shown_params(ins.service, ins.operation, ins.params))
        ]
    if isinstance(ins, WaitForFunction):
        # Polled (read-only) until the function is Active with no update in progress.
        return [_call("lambda", "GetFunctionConfiguration", {"FunctionName": ins.function_name})]
    if isinstance(ins, EmptyBucket):
        own = {"Bucket": ins.bucket, "ExpectedBucketOwner": ins.expected_owner}
        return [
            _call("s3", "ListObjectVersions", own),
            _call("s3", "DeleteObjects", {**own, "Delete": "<every version listed>"}),
        ]
    if isinstance(ins, WaitForTable):
        return [_call("dynamodb", "DescribeTable", {"TableName": ins.table_name})]
    if isinstance(ins, WaitForEndpoint):
        # Polled (read-only) until InService on that configuration.
        return [_call("sagemaker", "DescribeEndpoint", {"EndpointName": ins.endpoint_name})]
    if isinstance(ins, PushImage):
        pushed: dict[str, Any] = {"image": f"{ins.repository}:{ins.tag}"}
        if ins.dockerfile != PushImage.dockerfile:  # the server's image (lambda/ has two)
            pushed["dockerfile"] = ins.dockerfile
        return [
            _call("ecr", "GetAuthorizationToken", {}),
            _call("docker", "Push", pushed),
        ]
    if isinstance(ins, UploadArtifact):
        params = {
            "Bucket": ins.bucket,
            "Key": ins.key,
            "Body": show(ins.body),
            "ExpectedBucketOwner": ins.expected_owner,
        }
        return [_call("s3", "PutObject", params)]
    raise TypeError(f"no display for {type(ins).__name__}")


def render(steps: list[Step]) -> list[dict[str, Any]]:
    """Every step with its calls: the `steps` of `scarab plan --json`."""
    return [
        {
            "action": step.action,
            "resource": step.resource,
            "reason": step.reason,
            "calls": [c for ins in step.instructions for c in render_instruction(ins)],
        }
        for step in steps
    ]


def plan_document(stage: str, region: str, steps: list[Step]) -> dict[str, Any]:
    """The JSON `scarab plan --json` prints."""
    return {"stage": stage, "region": region, "steps": render(steps)}
