"""Plans checked with no server: desired state vs hand-made observations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from scarab.artifacts.zip import LAMBDA_ZIP_LIMIT
from scarab.config import load_config
from scarab.deploy.instructions import (
    ApiCall,
    FileBytes,
    Ref,
    Step,
    Sub,
    UploadArtifact,
    WaitForFunction,
)
from scarab.deploy.models import Code, Desired, desired_state
from scarab.deploy.planner import merged_environment, method_drift, plan
from scarab.deploy.reader import (
    Doomed,
    Observed,
    ObservedApi,
    ObservedFunction,
    ObservedKey,
    ObservedPlan,
    ObservedRole,
)
from scarab.deploy.teardown import plan_destroy
from scarab.naming import TAG_MANAGED_ENV

CODE = Code(package="zip", zip_path="/x.zip", zip_sha256_b64="c2hh", zip_size=10)


def desired(tmp_path: Path, **overrides: object) -> Desired:
    cfg = load_config(tmp_path, dict(overrides))
    return desired_state(
        cfg, account_id="123456789012", region="us-east-1", partition="aws", code=CODE
    )


def converged(d: Desired) -> Observed:
    """What AWS looks like right after a successful deploy of `d`."""
    api = d.api
    resources: dict[str, dict[str, object]] = {"/": {"id": "root", "methods": {}}}
    for i, path in enumerate(api.resource_paths):
        resources[path] = {"id": f"r{i}", "methods": {}}
    for m in api.methods:
        if m.kind == "proxy":
            integ: dict[str, object] = {"type": "AWS_PROXY", "uri": api.integration_uri}
            responses: dict[str, object] = {}
        else:
            integ = {
                "type": "MOCK",
                "integrationResponses": {
                    "200": {
                        "responseParameters": api.preflight_parameters(m.path),
                        "responseTemplates": {"application/json": api.preflight_template},
                    }
                },
            }
            responses = {"200": {}}
        methods = resources[m.path]["methods"]
        assert isinstance(methods, dict)
        methods[m.http_method] = {
            "authorizationType": "NONE",
            "apiKeyRequired": m.api_key_required,
            "methodIntegration": integ,
            "methodResponses": responses,
        }
    fn = d.function
    return Observed(
        role=ObservedRole(
            d.role_arn, d.role_trust, set(d.managed_policy_arns), dict(d.inline_policies)
        ),
        function=ObservedFunction(
            config={
                "CodeSha256": fn.code.zip_sha256_b64,
                "Architectures": [fn.architecture],
                "Environment": {"Variables": dict(fn.environment)},
                "MemorySize": fn.memory,
                "Timeout": fn.timeout,
                "Role": d.role_arn,
                "Runtime": fn.runtime,
                "Handler": fn.handler,
                "PackageType": "Zip",
            },
            code={},
            tags=dict(fn.tags),
            policy=[
                {
                    "Sid": d.names.permission_sid,
                    "Condition": {"ArnLike": {"AWS:SourceArn": d.source_arn("api1")}},
                }
            ],
        ),
        log_group_exists=True,
        log_group_retention=d.log_retention_days,
        api=ObservedApi(
            "api1",
            resources,
            {t: api.gateway_parameters() for t in ("DEFAULT_4XX", "DEFAULT_5XX")},
            True,
            api.fingerprint,
            api.binary_media_types,
        ),
        plan=ObservedPlan(
            "plan1",
            {"rateLimit": d.usage_plan.rate, "burstLimit": d.usage_plan.burst},
            {"limit": d.usage_plan.quota_limit, "period": d.usage_plan.quota_period},
            [{"apiId": "api1", "stage": d.names.stage}],
        ),
        keys=[ObservedKey("k1", d.usage_plan.first_key_name, True, "", True)],
    )


def kinds(steps: list) -> list[tuple[str, str]]:
    return [(s.action, s.resource) for s in steps]


def test_empty_account_plans_every_resource(tmp_path: Path) -> None:
    d = desired(tmp_path)
    steps = plan(d, Observed.empty())
    resources = [s.resource for s in steps]
    assert all(s.action == "create" for s in steps if "retention" not in s.resource)
    assert resources[0] == "iam.role scarab-dev-role"
    for needle in (
        "lambda.function scarab-dev",
        "apigateway.rest_api scarab-dev",
        "apigateway.rest_api scarab-dev POST /analyze",
        "apigateway.rest_api scarab-dev OPTIONS /predict/{model_id}",
        "apigateway.rest_api scarab-dev gateway-response DEFAULT_4XX",
        "lambda.permission scarab-apigateway-invoke",
        "apigateway.stage dev",
        "apigateway.usage_plan scarab-dev-plan",
        "apigateway.api_key scarab-dev-key-1",
    ):
        assert needle in resources, needle
    # Dependency order: role before function before API before usage plan.
    order = [
        resources.index(n)
        for n in (
            "iam.role scarab-dev-role",
            "lambda.function scarab-dev",
            "apigateway.rest_api scarab-dev",
            "apigateway.stage dev",
            "apigateway.usage_plan scarab-dev-plan",
        )
    ]
    assert order == sorted(order)
    assert all(s.reason for s in steps)


def test_converged_account_plans_nothing(tmp_path: Path) -> None:
    d = desired(tmp_path)
    assert plan(d, converged(d), state_env=[]) == []


def test_memory_change_updates_configuration_only(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    d2 = desired(tmp_path, **{"function.memory": 1024})
    steps = plan(d2, obs)
    assert kinds(steps) == [("update", "lambda.function scarab-dev configuration")]
    assert "MemorySize 512 -> 1024" in steps[0].reason


def test_code_change_updates_code_only(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    d2 = dataclasses.replace(
        d,
        function=dataclasses.replace(
            d.function, code=dataclasses.replace(CODE, zip_sha256_b64="bmV3")
        ),
    )
    assert kinds(plan(d2, obs)) == [("update", "lambda.function scarab-dev code")]


def test_drifted_method_is_replaced_and_the_api_redeployed(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    assert obs.api is not None
    obs.api.resources["/analyze"]["methods"]["POST"]["apiKeyRequired"] = False
    steps = plan(d, obs)
    assert kinds(steps) == [
        ("update", "apigateway.rest_api scarab-dev POST /analyze"),
        ("update", "apigateway.stage dev"),
    ]
    assert "apiKeyRequired should be true" in steps[0].reason


def test_stale_stage_is_redeployed(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    assert obs.api is not None
    obs.api.stage_fingerprint = "scarab:old"
    assert kinds(plan(d, obs)) == [("update", "apigateway.stage dev")]


def test_permission_for_another_api_is_replaced(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    assert obs.function is not None
    obs.function.policy[0]["Condition"]["ArnLike"]["AWS:SourceArn"] = d.source_arn("other")
    assert kinds(plan(d, obs)) == [
        ("delete", "lambda.permission scarab-apigateway-invoke"),
        ("create", "lambda.permission scarab-apigateway-invoke"),
    ]


def test_permission_on_every_stage_is_narrowed_to_this_stage(tmp_path: Path) -> None:
    d = desired(tmp_path)
    assert d.source_arn("api1") == "arn:aws:execute-api:us-east-1:123456789012:api1/dev/*/*"
    obs = converged(d)
    assert obs.function is not None
    # What scarab granted before: any stage, method and path of the API.
    broad = "arn:aws:execute-api:us-east-1:123456789012:api1/*"
    obs.function.policy[0]["Condition"]["ArnLike"]["AWS:SourceArn"] = broad
    assert kinds(plan(d, obs)) == [
        ("delete", "lambda.permission scarab-apigateway-invoke"),
        ("create", "lambda.permission scarab-apigateway-invoke"),
    ]


def test_role_has_scoped_inline_policies_and_no_managed_policy(tmp_path: Path) -> None:
    d = desired(tmp_path)
    assert d.managed_policy_arns == ()
    assert d.inline_policies["scarab-write-logs"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": (
                    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/scarab-dev:*"
                ),
            }
        ],
    }
    assert set(d.inline_policies) == {"scarab-write-logs", "scarab-read-secret"}


def test_old_role_is_migrated_to_least_privilege(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    assert obs.role is not None
    basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    obs.role.attached = {basic}
    del obs.role.inline["scarab-write-logs"]
    steps = plan(d, obs)
    assert kinds(steps) == [
        ("create", "iam.role scarab-dev-role inline scarab-write-logs"),
        ("delete", "iam.role scarab-dev-role policy AWSLambdaBasicExecutionRole"),
    ]
    # Someone else's inline policy and managed policy are left alone.
    obs = converged(d)
    assert obs.role is not None
    obs.role.attached = {"arn:aws:iam::123456789012:policy/theirs"}
    obs.role.inline["theirs"] = {"Statement": []}
    assert plan(d, obs) == []


def test_binary_media_types_are_managed_and_redeployed(tmp_path: Path) -> None:
    d = desired(tmp_path)
    assert d.api.binary_media_types == (
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "application/octet-stream",
    )
    assert "application/json" not in d.api.binary_media_types
    obs = converged(d)
    assert obs.api is not None
    # The "~1" spelling is the same type; a missing one is added, a foreign one removed.
    obs.api.binary_media_types = ("image~1png", "image/webp", "image/gif", "text/csv")
    obs.api.binary_media_types += ("application/octet-stream",)
    steps = plan(d, obs)
    assert kinds(steps) == [
        ("update", "apigateway.rest_api scarab-dev binaryMediaTypes"),
        ("update", "apigateway.stage dev"),
    ]
    assert steps[0].reason == "binary media types differ (+image/jpeg, -text/csv)"
    # A changed list is a changed API definition: a stage on the old one is redeployed.
    other = dataclasses.replace(d, api=dataclasses.replace(d.api, binary_media_types=("*/*",)))
    assert other.api.fingerprint != d.api.fingerprint


def test_usage_plan_without_keys_gets_the_existing_first_key_not_a_new_one(
    tmp_path: Path,
) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    obs.keys = [ObservedKey("k1", "scarab-dev-key-1", True, "", in_plan=False)]
    steps = plan(d, obs)
    assert kinds(steps) == [("update", "apigateway.api_key scarab-dev-key-1")]


def test_throttle_change_patches_the_usage_plan(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    d2 = desired(tmp_path, **{"api.throttle_rate": 3})
    steps = plan(d2, obs)
    assert kinds(steps) == [("update", "apigateway.usage_plan scarab-dev-plan")]
    assert "throttle rate" in steps[0].reason


def test_environment_merge_keeps_foreign_variables_and_drops_removed_ones() -> None:
    live = {"A": "1", "THEIRS": "x", "OLD": "gone"}
    merged = merged_environment({"A": "2", "NEW": "n"}, live, previously_managed={"A", "OLD"})
    assert merged == {"A": "2", "THEIRS": "x", "NEW": "n"}


def test_environment_merge_reads_the_managed_tag(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    assert obs.function is not None
    obs.function.config["Environment"]["Variables"]["OLD_SETTING"] = "1"
    obs.function.config["Environment"]["Variables"]["SOMEONE_ELSES"] = "1"
    obs.function.tags[TAG_MANAGED_ENV] += " OLD_SETTING"
    steps = plan(d, obs)
    assert kinds(steps) == [
        ("update", "lambda.function scarab-dev configuration"),
        ("update", "lambda.function scarab-dev tags"),
    ]
    assert "OLD_SETTING" in steps[0].reason and "SOMEONE_ELSES" not in steps[0].reason


def test_method_drift_reports_missing_integration(tmp_path: Path) -> None:
    d = desired(tmp_path)
    spec = next(m for m in d.api.methods if m.http_method == "POST")
    observed = {"authorizationType": "NONE", "apiKeyRequired": True}
    assert method_drift(observed, spec, d.api) == "integration is missing, not AWS_PROXY"
    assert method_drift(None, spec, d.api) == "missing"


def test_multiple_origins_echo_the_request_origin(tmp_path: Path) -> None:
    d = desired(
        tmp_path, **{"function.allowed_origins": ["https://a.example", "https://b.example"]}
    )
    assert d.api.cors_origin == "method.request.header.Origin"
    assert '$origin == "https://a.example"' in d.api.preflight_template
    assert d.function.environment["ALLOWED_ORIGINS"] == "https://a.example,https://b.example"


def test_readme_shows_the_policies_the_deploy_writes(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Deploying to AWS", 1)[1].split("## The HTTP API", 1)[0]
    blocks = [json.loads(b.split("```", 1)[0]) for b in section.split("```json\n")[1:]]
    cfg = load_config(tmp_path)
    d = desired_state(
        cfg, account_id="<account>", region="<region>", partition="<partition>", code=CODE
    )
    trust, logs, secret, permission = blocks
    assert trust == d.role_trust
    assert logs == d.inline_policies["scarab-write-logs"]
    assert secret == d.inline_policies["scarab-read-secret"]
    assert permission == {
        "Sid": d.names.permission_sid,
        "Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": d.function.arn,
        "Condition": {"ArnLike": {"AWS:SourceArn": d.source_arn("<api-id>")}},
    }


# Plans as values ---------------------------------------------------------------------


def refs_in(value: object) -> list[str]:
    if isinstance(value, Ref):
        return [value.name]
    if isinstance(value, Sub):
        return [part.split("}", 1)[0] for part in value.template.split("${")[1:]]
    if isinstance(value, dict):
        return [r for v in value.values() for r in refs_in(v)]
    if isinstance(value, list | tuple):
        return [r for v in value for r in refs_in(v)]
    return []


def step(steps: list[Step], resource: str) -> Step:
    (found,) = [s for s in steps if s.resource == resource]
    return found


def test_every_ref_of_a_first_deploy_is_produced_before_it_is_used(tmp_path: Path) -> None:
    produced: set[str] = set()
    for s in plan(desired(tmp_path), Observed.empty()):
        for ins in s.instructions:
            if isinstance(ins, ApiCall):
                missing = set(refs_in(ins.params)) - produced
                assert not missing, f"{s.resource} {ins.operation} uses {missing}"
                if ins.output_var:
                    produced.add(ins.output_var)
    assert {"rest_api_id", "resource:/", "resource:/predict/{model_id}"} <= produced
    assert {"usage_plan_id", "api_key_id"} <= produced


def test_first_deploy_calls_as_values(tmp_path: Path) -> None:
    d = desired(tmp_path)
    steps = plan(d, Observed.empty())
    assert step(steps, "apigateway.rest_api scarab-dev resource /predict/{model_id}").calls == [
        ApiCall(
            "apigateway",
            "CreateResource",
            {
                "restApiId": Ref("rest_api_id"),
                "parentId": Ref("resource:/predict"),
                "pathPart": "{model_id}",
            },
            output_var="resource:/predict/{model_id}",
            output_path="id",
        )
    ]
    create, attach = step(steps, "apigateway.api_key scarab-dev-key-1").calls
    assert (create.operation, create.output_var, create.output_path) == (
        "CreateApiKey",
        "api_key_id",
        "id",
    )
    assert "value" not in create.params  # API Gateway generates the value; it is never kept
    assert attach.params == {
        "usagePlanId": Ref("usage_plan_id"),
        "keyId": Ref("api_key_id"),
        "keyType": "API_KEY",
    }
    (permission,) = step(steps, "lambda.permission scarab-apigateway-invoke").calls
    assert permission.params["SourceArn"] == Sub(
        "arn:aws:execute-api:us-east-1:123456789012:${rest_api_id}/dev/*/*"
    )
    function = step(steps, "lambda.function scarab-dev")
    create_fn, wait = function.instructions
    assert isinstance(create_fn, ApiCall) and create_fn.retry_while_role_not_ready
    assert create_fn.params["Code"] == {"ZipFile": FileBytes("/x.zip", "736861", 10)}
    assert wait == WaitForFunction("scarab-dev")


def test_memory_change_is_one_call_and_a_wait(tmp_path: Path) -> None:
    d = desired(tmp_path)
    d2 = desired(tmp_path, **{"function.memory": 1024})
    (s,) = plan(d2, converged(d))
    assert s.instructions == (
        ApiCall(
            "lambda",
            "UpdateFunctionConfiguration",
            {
                "FunctionName": "scarab-dev",
                "Role": d.role_arn,
                "MemorySize": 1024,
                "Timeout": d.function.timeout,
                "Environment": {"Variables": d.function.environment},
                "Runtime": d.function.runtime,
                "Handler": d.function.handler,
            },
            retry_while_role_not_ready=True,
        ),
        WaitForFunction("scarab-dev"),
    )


def test_usage_plan_bound_to_an_old_api_is_rebound(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    assert obs.plan is not None
    obs.plan.api_stages = [{"apiId": "old", "stage": "dev"}, {"apiId": "x", "stage": "prod"}]
    (s,) = plan(d, obs)
    assert s.calls == [
        ApiCall(
            "apigateway",
            "UpdateUsagePlan",
            {
                "usagePlanId": Ref("usage_plan_id"),
                "patchOperations": [
                    {"op": "remove", "path": "/apiStages", "value": "old:dev"},
                    {"op": "add", "path": "/apiStages", "value": Sub("${rest_api_id}:dev")},
                ],
            },
        )
    ]


def test_a_zip_over_the_limit_goes_through_the_artifact_bucket(tmp_path: Path) -> None:
    d = desired(tmp_path)
    big = dataclasses.replace(CODE, zip_size=LAMBDA_ZIP_LIMIT + 1)
    d = dataclasses.replace(d, function=dataclasses.replace(d.function, code=big))
    steps = plan(d, Observed.empty())
    bucket = "scarab-artifacts-123456789012-us-east-1"
    assert [c.operation for c in step(steps, f"s3.bucket {bucket}").calls] == [
        "CreateBucket",
        "PutPublicAccessBlock",
    ]
    upload, create, _ = step(steps, "lambda.function scarab-dev").instructions
    body = FileBytes("/x.zip", "736861", LAMBDA_ZIP_LIMIT + 1)
    assert upload == UploadArtifact(bucket, "scarab-dev/736861.zip", body, "123456789012")
    assert isinstance(create, ApiCall)
    assert create.params["Code"] == {"S3Bucket": bucket, "S3Key": "scarab-dev/736861.zip"}
    # The bucket exists: no step for it.
    obs = Observed.empty()
    obs.artifact_bucket_exists = True
    assert not any(s.resource.startswith("s3.") for s in plan(d, obs))


def test_every_delete_step_says_so(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    assert obs.api is not None and obs.function is not None and obs.role is not None
    obs.api.resources["/stray"] = {"id": "rs", "methods": {}}
    obs.api.resources["/health"]["methods"]["DELETE"] = {}
    obs.function.policy[0]["Condition"]["ArnLike"]["AWS:SourceArn"] = "other"
    obs.role.attached = {"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}
    deletes = [s for s in plan(d, obs) if s.action == "delete"]
    assert len(deletes) == 4
    assert all(s.reason.startswith("deletes it: ") for s in deletes)


def test_destroy_keeps_a_role_another_region_uses(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    doomed = Doomed(function=True, permission=True, role=obs.role, rest_api_ids=["a1", "a2"])
    steps = plan_destroy(d.names, doomed)
    assert [s.resource for s in steps] == [
        "apigateway.rest_api scarab-dev",
        "apigateway.rest_api scarab-dev",
        "lambda.permission scarab-apigateway-invoke",
        "lambda.function scarab-dev",
        "iam.role scarab-dev-role",
    ]
    role = steps[-1].calls
    assert [c.operation for c in role] == ["DeleteRolePolicy", "DeleteRolePolicy", "DeleteRole"]
    assert all(c.missing_ok for s in steps for c in s.calls)
    doomed.role_users = ["the function scarab-dev in eu-west-1 still uses it"]
    assert "iam.role scarab-dev-role" not in [s.resource for s in plan_destroy(d.names, doomed)]


def test_the_planners_are_pure() -> None:
    """The planners import models, observations and instructions; never boto3 or aws."""
    import ast

    deploy = Path(__file__).resolve().parents[2] / "tooling" / "scarab" / "deploy"
    allowed = {
        "__future__", "base64", "json", "pathlib", "typing", "scarab.deploy.instructions",
        "scarab.deploy.models", "scarab.deploy.planner_api", "scarab.deploy.reader",
        "scarab.errors", "scarab.naming",
    }  # fmt: skip
    for name in ("planner.py", "planner_api.py", "teardown.py"):
        tree = ast.parse((deploy / name).read_text())
        imported = {
            n.module if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in n.names
        }
        assert imported <= allowed, (name, imported - allowed)
