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
from scarab.deploy.models import UNTAGGED_ENV, Code, Desired, FunctionSpec, desired_state
from scarab.deploy.planner import merged_environment, method_drift, plan
from scarab.deploy.planner_versions import (
    code_identity,
    config_digest,
    version_configuration,
    version_description,
)
from scarab.deploy.reader import (
    Doomed,
    DoomedFunction,
    Observed,
    ObservedAlarms,
    ObservedApi,
    ObservedCache,
    ObservedFunction,
    ObservedJobs,
    ObservedKey,
    ObservedPlan,
    ObservedRegistry,
    ObservedRole,
    ObservedUnit,
    ObservedUploads,
)
from scarab.deploy.teardown import plan_destroy
from scarab.functions import ALL_ROUTES, FUNCTIONS
from scarab.naming import TAG_MANAGED_ENV

CODE = Code(package="zip", zip_path="/x.zip", zip_sha256_b64="c2hh", zip_size=10)
CODES = {f.name: CODE for f in (*FUNCTIONS, ALL_ROUTES)}
ANALYZE, MODELS = "scarab-dev-analyze", "scarab-dev-models"


def alias_permission(function: str) -> str:
    """The resource of the step that grants API Gateway the `live` alias of `function`."""
    return f"lambda.permission {function}:live scarab-apigateway-invoke-live"


def release(function: str) -> list[tuple[str, str]]:
    """The steps that publish a version of `function` and move `live` to it."""
    return [("create", f"lambda.version {function}"), ("update", f"lambda.alias {function}:live")]


def desired(tmp_path: Path, **overrides: object) -> Desired:
    cfg = load_config(tmp_path, dict(overrides))
    return desired_state(
        cfg, account_id="123456789012", region="us-east-1", partition="aws", codes=CODES
    )


def with_code(d: Desired, key: str, code: Code) -> Desired:
    fns = tuple(dataclasses.replace(f, code=code) if f.key == key else f for f in d.functions)
    return dataclasses.replace(d, functions=fns)


def recorded(fn: FunctionSpec, env: dict[str, str] | None = None) -> str:
    """The description scarab gives a version of `fn` as `d` describes it."""
    config = version_configuration(fn, fn.environment if env is None else env)
    return version_description(code_identity(fn), config_digest(config), None, "0.1.0")


def live_unit(d: Desired, fn: FunctionSpec) -> ObservedUnit:
    """Function `fn` as AWS has it right after a successful deploy of `d`."""
    return ObservedUnit(
        role=ObservedRole(
            fn.role_arn, d.role_trust, set(d.managed_policy_arns), dict(fn.inline_policies),
            dict(d.tags),
        ),
        function=ObservedFunction(
            config={
                "CodeSha256": fn.code.zip_sha256_b64,
                "Architectures": [fn.architecture],
                "Environment": {"Variables": dict(fn.environment)},
                "MemorySize": fn.memory,
                "Timeout": fn.timeout,
                "Role": fn.role_arn,
                "Runtime": fn.runtime,
                "Handler": fn.handler,
                "PackageType": "Zip",
                **(
                    {"DeadLetterConfig": {"TargetArn": fn.dead_letter_arn}}
                    if fn.dead_letter_arn
                    else {}
                ),
            },
            code={},
            tags=dict(fn.tags),
            policy=[],
            # Version 1 records this code and configuration; `live` points to it.
            versions=[{"Version": "1", "Description": recorded(fn)}],
            aliases={"live": {"Name": "live", "FunctionVersion": "1"}},
            alias_policy=[
                {
                    "Sid": d.names.alias_permission_sid,
                    "Condition": {"ArnLike": {"AWS:SourceArn": d.source_arn("api1")}},
                }
            ],
        ),
        log_group_exists=True,
        log_group_retention=fn.log_retention_days,
    )  # fmt: skip


def unit(obs: Observed, key: str = "analyze") -> ObservedUnit:
    return obs.units[key]


def converged(d: Desired) -> Observed:
    """What AWS looks like right after a successful deploy of `d`."""
    api = d.api
    resources: dict[str, dict[str, object]] = {"/": {"id": "root", "methods": {}}}
    for i, path in enumerate(api.resource_paths):
        resources[path] = {"id": f"r{i}", "methods": {}}
    for m in api.methods:
        if m.kind == "proxy":
            integ: dict[str, object] = {"type": "AWS_PROXY", "uri": m.integration_uri}
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
    return Observed(
        units={fn.key: live_unit(d, fn) for fn in d.functions},
        registry=ObservedRegistry(
            table_exists=True,
            bucket_exists=True,
            versioning=True,
            public_access_blocked=True,
            encrypted=True,
        ),
        cache=ObservedCache(True, True, "expires_at", dict(d.tags)) if d.cache else None,
        api=ObservedApi(
            "api1",
            resources,
            {t: api.gateway_parameters() for t in ("DEFAULT_4XX", "DEFAULT_5XX")},
            True,
            api.fingerprint,
            api.binary_media_types,
            dict(api.tags),
        ),
        plan=ObservedPlan(
            "plan1",
            {"rateLimit": d.usage_plan.rate, "burstLimit": d.usage_plan.burst},
            {"limit": d.usage_plan.quota_limit, "period": d.usage_plan.quota_period},
            [{"apiId": "api1", "stage": d.names.stage}],
        ),
        keys=[ObservedKey("k1", d.usage_plan.first_key_name, True, "", True)],
        alarms=converged_alarms(d),
        uploads=converged_uploads(d),
        jobs=converged_jobs(d),
    )


def converged_uploads(d: Desired) -> ObservedUploads | None:
    """The uploads bucket as the reader finds it after a deploy of `d`."""
    u = d.uploads
    if u is None:
        return None
    return ObservedUploads(
        bucket_exists=True,
        tags=dict(u.tags),
        public_access_blocked=True,
        encrypted=True,
        owner_enforced=True,
        lifecycle=list(u.lifecycle["Rules"]),
        cors=list(u.cors["CORSRules"]),
    )


def converged_jobs(d: Desired) -> ObservedJobs | None:
    """The jobs table, queue, invoke config and mapping as found after a deploy of `d`."""
    j = d.jobs
    if j is None:
        return None
    fn = d.function(j.function_key)
    return ObservedJobs(
        table_exists=True,
        ttl_enabled=True,
        ttl_attribute=j.ttl_attribute,
        table_tags=dict(j.tags),
        queue_url=f"https://sqs.{d.region}.amazonaws.com/{d.account_id}/{j.queue}",
        queue_attributes={**j.queue_attributes, "QueueArn": j.queue_arn},
        queue_tags=dict(j.tags),
        invoke_config={**j.invoke_config, "FunctionArn": fn.alias_arn},
        mappings=[
            {
                "UUID": "m1",
                "FunctionArn": fn.alias_arn,
                "BatchSize": 10,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "State": "Enabled",
            }
        ],
    )


def converged_alarms(d: Desired) -> ObservedAlarms:
    """The stage's alarms, topic and budget as DescribeAlarms & co. answer after a deploy."""
    from scarab.deploy.planner_alarms import alarm_params

    obs = ObservedAlarms()
    if d.alarms is not None:
        topic = d.alarms.topic
        for alarm in d.alarms.alarms:
            params = alarm_params(alarm, topic.arn, d.alarms.tags)
            params.pop("Tags")
            obs.alarms[alarm.name] = {**params, "AlarmArn": f"arn:alarm:{alarm.name}"}
            obs.alarm_tags[alarm.name] = dict(d.alarms.tags)
        obs.topic_exists, obs.topic_arn, obs.topic_tags = True, topic.arn, dict(topic.tags)
        if topic.email:
            obs.subscriptions = [
                {"SubscriptionArn": f"{topic.arn}:1", "Protocol": "email", "Endpoint": topic.email}
            ]
    if d.budget is not None:
        obs.budget = {**d.budget.budget(), "BudgetLimit": {"Amount": "25.0", "Unit": "USD"}}
        obs.budget["BudgetLimit"]["Amount"] = str(d.budget.limit_usd)
        obs.budget_notifications = d.budget.notifications()
    return obs


def kinds(steps: list) -> list[tuple[str, str]]:
    return [(s.action, s.resource) for s in steps]


def test_empty_account_plans_every_resource(tmp_path: Path) -> None:
    d = desired(tmp_path)
    steps = plan(d, Observed.empty())
    resources = [s.resource for s in steps]
    assert all(s.action == "create" for s in steps if "retention" not in s.resource)
    assert resources[0] == f"iam.role {ANALYZE}-role"
    for needle in (
        f"lambda.function {ANALYZE}",
        f"lambda.function {MODELS}",
        f"iam.role {MODELS}-role",
        f"logs.group /aws/lambda/{MODELS}",
        "apigateway.rest_api scarab-dev",
        "apigateway.rest_api scarab-dev POST /analyze",
        "apigateway.rest_api scarab-dev OPTIONS /predict/{model_id}",
        "apigateway.rest_api scarab-dev gateway-response DEFAULT_4XX",
        f"lambda.version {ANALYZE}",
        f"lambda.alias {ANALYZE}:live",
        alias_permission(ANALYZE),
        alias_permission(MODELS),
        "apigateway.stage dev",
        "apigateway.usage_plan scarab-dev-plan",
        "apigateway.api_key scarab-dev-key-1",
    ):
        assert needle in resources, needle
    # Dependency order: role before function before API before usage plan.
    order = [
        resources.index(n)
        for n in (
            f"iam.role {ANALYZE}-role",
            f"lambda.function {ANALYZE}",
            f"lambda.version {ANALYZE}",
            f"lambda.alias {ANALYZE}:live",
            "apigateway.rest_api scarab-dev",
            alias_permission(MODELS),
            "apigateway.stage dev",
            "apigateway.usage_plan scarab-dev-plan",
        )
    ]
    assert order == sorted(order)
    assert all(s.reason for s in steps)


def test_converged_account_plans_nothing(tmp_path: Path) -> None:
    d = desired(tmp_path)
    assert plan(d, converged(d), state_env={}) == []


def test_memory_change_updates_configuration_only(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    d2 = desired(tmp_path, **{"function.memory": 1024})
    steps = plan(d2, obs)
    # A change of configuration alone publishes a version too (SAM's does not).
    assert kinds(steps) == [
        ("update", f"lambda.function {ANALYZE} configuration"),
        *release(ANALYZE),
        ("update", f"lambda.function {MODELS} configuration"),
        *release(MODELS),
    ]
    assert "MemorySize 512 -> 1024" in steps[0].reason
    assert steps[1].reason == "version 1 has other configuration"


def test_functions_override_changes_only_that_function(tmp_path: Path) -> None:
    d = desired(tmp_path)
    d2 = desired(tmp_path, **{"functions.models.memory": 2048, "functions.models.timeout": 60})
    assert (d2.function("analyze").memory, d2.function("models").memory) == (512, 2048)
    steps = plan(d2, converged(d))
    # Its duration alarm follows its timeout (80% of it); nothing of analyze changes.
    assert kinds(steps) == [
        ("update", f"lambda.function {MODELS} configuration"),
        *release(MODELS),
        ("update", "cloudwatch.alarm scarab-dev-models-duration-p99"),
    ]
    assert "MemorySize 512 -> 2048" in steps[0].reason and "Timeout 30 -> 60" in steps[0].reason
    (alarm,) = [s for s in steps if s.resource.startswith("cloudwatch.alarm")]
    assert alarm.instructions[0].params["Threshold"] == 48000.0


def test_code_change_updates_code_only(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    d2 = with_code(d, "models", dataclasses.replace(CODE, zip_sha256_b64="bmV3"))
    steps = plan(d2, obs)
    assert kinds(steps) == [("update", f"lambda.function {MODELS} code"), *release(MODELS)]
    assert steps[1].reason == "version 1 runs other code"


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
    live = unit(obs).function
    assert live is not None
    live.alias_policy[0]["Condition"]["ArnLike"]["AWS:SourceArn"] = d.source_arn("other")
    assert kinds(plan(d, obs)) == [
        ("delete", alias_permission(ANALYZE)),
        ("create", alias_permission(ANALYZE)),
    ]


def test_permission_on_every_stage_is_narrowed_to_this_stage(tmp_path: Path) -> None:
    d = desired(tmp_path)
    assert d.source_arn("api1") == "arn:aws:execute-api:us-east-1:123456789012:api1/dev/*/*"
    obs = converged(d)
    live = unit(obs, "models").function
    assert live is not None
    # What scarab granted before: any stage, method and path of the API.
    broad = "arn:aws:execute-api:us-east-1:123456789012:api1/*"
    live.alias_policy[0]["Condition"]["ArnLike"]["AWS:SourceArn"] = broad
    assert kinds(plan(d, obs)) == [
        ("delete", alias_permission(MODELS)),
        ("create", alias_permission(MODELS)),
    ]


def test_role_has_scoped_inline_policies_and_no_managed_policy(tmp_path: Path) -> None:
    d = desired(tmp_path)
    assert d.managed_policy_arns == ()
    analyze, models = d.function("analyze"), d.function("models")
    assert analyze.inline_policies["scarab-write-logs"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": (
                    f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{ANALYZE}:*"
                ),
            }
        ],
    }
    # Both use the shared response cache table ([cache] shared, the default) and the
    # uploads bucket; analyze runs the jobs.
    assert set(analyze.inline_policies) == {
        "scarab-write-logs",
        "scarab-read-secret",
        "scarab-use-cache",
        "scarab-use-uploads",
        "scarab-run-jobs",
    }
    # The models function reads no Gemini key: its role cannot, and it is not told where;
    # it reads the model registry instead (and analyze cannot).
    assert set(models.inline_policies) == {
        "scarab-write-logs",
        "scarab-read-registry",
        "scarab-use-cache",
        "scarab-use-uploads",
    }
    assert models.environment["MODEL_REGISTRY_TABLE"] == "scarab-dev-models"
    assert "MODEL_REGISTRY_TABLE" not in analyze.environment
    logs_resource = models.inline_policies["scarab-write-logs"]["Statement"][0]["Resource"]
    assert logs_resource.endswith(f":log-group:/aws/lambda/{MODELS}:*")
    assert "GOOGLE_API_KEY_PARAM" in analyze.environment
    assert not {"GOOGLE_API_KEY_PARAM", "GOOGLE_API_KEY_BACKEND"} & set(models.environment)
    assert (analyze.role_name, models.role_name) == (f"{ANALYZE}-role", f"{MODELS}-role")


def test_each_route_is_integrated_with_its_function(tmp_path: Path) -> None:
    d = desired(tmp_path)
    targets = {
        (m.http_method, m.path): m.function_arn.rsplit(":", 1)[1]
        for m in d.api.methods
        if m.kind == "proxy"
    }
    assert targets == {
        ("POST", "/analyze"): ANALYZE,
        ("GET", "/health"): ANALYZE,
        ("GET", "/openapi.json"): ANALYZE,
        ("POST", "/uploads"): ANALYZE,
        ("POST", "/jobs"): ANALYZE,
        ("GET", "/jobs/{id}"): ANALYZE,
        ("GET", "/models"): MODELS,
        ("POST", "/predict/{model_id}"): MODELS,
        ("GET", "/forecast/{model_id}"): MODELS,
        ("GET", "/stats"): MODELS,
    }
    for m in d.api.methods:
        if m.kind == "proxy":
            assert m.integration_uri.endswith(f"functions/{m.function_arn}:live/invocations")
    handlers = {f.key: f.handler for f in d.functions}
    assert handlers == {
        "analyze": "lens.entry.analyze.lambda_handler",
        "models": "lens.entry.models.lambda_handler",
    }


def test_a_dropped_gemini_policy_is_deleted_from_a_role_that_does_not_need_it(
    tmp_path: Path,
) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    role = unit(obs, "models").role
    assert role is not None
    role.inline["scarab-read-secret"] = d.function("analyze").inline_policies["scarab-read-secret"]
    role.inline["theirs"] = {"Statement": []}
    steps = plan(d, obs)
    assert kinds(steps) == [("delete", f"iam.role {MODELS}-role inline scarab-read-secret")]
    assert steps[0].calls[0].operation == "DeleteRolePolicy"


def test_old_role_is_migrated_to_least_privilege(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    role = unit(obs).role
    assert role is not None
    basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    role.attached = {basic}
    del role.inline["scarab-write-logs"]
    steps = plan(d, obs)
    assert kinds(steps) == [
        ("create", f"iam.role {ANALYZE}-role inline scarab-write-logs"),
        ("delete", f"iam.role {ANALYZE}-role policy AWSLambdaBasicExecutionRole"),
    ]
    # Someone else's inline policy and managed policy are left alone.
    obs = converged(d)
    role = unit(obs).role
    assert role is not None
    role.attached = {"arn:aws:iam::123456789012:policy/theirs"}
    role.inline["theirs"] = {"Statement": []}
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
    live = unit(obs).function
    assert live is not None
    live.config["Environment"]["Variables"]["OLD_SETTING"] = "1"
    live.config["Environment"]["Variables"]["SOMEONE_ELSES"] = "1"
    live.tags[TAG_MANAGED_ENV] += " OLD_SETTING"
    steps = plan(d, obs)
    assert kinds(steps) == [
        ("update", f"lambda.function {ANALYZE} configuration"),
        ("update", f"lambda.function {ANALYZE} tags"),
        # The variable someone set by hand is in $LATEST: the version freezes it too.
        *release(ANALYZE),
    ]
    assert "OLD_SETTING" in steps[0].reason and "SOMEONE_ELSES" not in steps[0].reason


def test_a_new_variable_is_named_as_scarabs_before_it_is_set(tmp_path: Path) -> None:
    """Killed between the two calls, the next run still knows the variable is scarab's."""
    d = desired(tmp_path)
    obs = converged(d)
    d2 = desired(tmp_path, **{"functions.models.environment": {"NEWV": "1"}})
    steps = plan(d2, obs)
    assert kinds(steps) == [
        ("update", f"lambda.function {MODELS} tags"),
        ("update", f"lambda.function {MODELS} configuration"),
        *release(MODELS),
    ]
    tagged = steps[0].calls[0].params["Tags"][TAG_MANAGED_ENV].split()
    # The uploads' variables are scarab's by name, never in the tag (models.UNTAGGED_ENV).
    want = sorted(set(d2.function("models").environment) - UNTAGGED_ENV)
    assert "NEWV" in tagged and tagged == want


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
    for fn in d.functions:
        assert fn.environment["ALLOWED_ORIGINS"] == "https://a.example,https://b.example"


def test_readme_shows_the_policies_the_deploy_writes(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Deploying to AWS", 1)[1].split("## The HTTP API", 1)[0]
    blocks = [json.loads(b.split("```", 1)[0]) for b in section.split("```json\n")[1:]]
    cfg = load_config(tmp_path)
    d = desired_state(
        cfg, account_id="<account>", region="<region>", partition="<partition>", codes=CODES
    )
    trust, logs, secret, permission = blocks
    analyze = d.function("analyze")
    assert trust == d.role_trust
    assert logs == analyze.inline_policies["scarab-write-logs"]
    assert secret == analyze.inline_policies["scarab-read-secret"]
    assert permission == {
        "Sid": d.names.alias_permission_sid,
        "Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": analyze.alias_arn,
        "Condition": {"ArnLike": {"AWS:SourceArn": d.source_arn("<api-id>")}},
    }


# Plans as values ---------------------------------------------------------------------


def refs_in(value: object) -> list[str]:
    if isinstance(value, Ref):
        return [value.name]
    if isinstance(value, Sub):
        return [part.split("}", 1)[0] for part in value.template.split("${")[1:]]
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in (*refs_in(k), *refs_in(v))]
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
    (permission,) = step(steps, alias_permission(ANALYZE)).calls
    assert (permission.params["Qualifier"], permission.params["StatementId"]) == (
        "live",
        "scarab-apigateway-invoke-live",
    )
    assert permission.params["SourceArn"] == Sub(
        "arn:aws:execute-api:us-east-1:123456789012:${rest_api_id}/dev/*/*"
    )
    function = step(steps, f"lambda.function {MODELS}")
    create_fn, wait = function.instructions
    assert isinstance(create_fn, ApiCall) and create_fn.retry_while_role_not_ready
    assert create_fn.params["Code"] == {"ZipFile": FileBytes("/x.zip", "736861", 10)}
    assert create_fn.params["Role"] == f"arn:aws:iam::123456789012:role/{MODELS}-role"
    assert create_fn.params["Handler"] == "lens.entry.models.lambda_handler"
    assert wait == WaitForFunction(MODELS)


def test_memory_change_is_one_call_and_a_wait(tmp_path: Path) -> None:
    d = desired(tmp_path)
    d2 = desired(tmp_path, **{"functions.analyze.memory": 1024})
    s, *published = plan(d2, converged(d))
    assert kinds(published) == release(ANALYZE)
    fn = d.function("analyze")
    assert s.instructions == (
        ApiCall(
            "lambda",
            "UpdateFunctionConfiguration",
            {
                "FunctionName": ANALYZE,
                "Role": fn.role_arn,
                "MemorySize": 1024,
                "Timeout": fn.timeout,
                "Environment": {"Variables": fn.environment},
                "Runtime": fn.runtime,
                "Handler": fn.handler,
                # Always given with the configuration (the jobs' failed runs go there).
                "DeadLetterConfig": {"TargetArn": fn.dead_letter_arn},
            },
            retry_while_role_not_ready=True,
        ),
        WaitForFunction(ANALYZE),
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
    d = with_code(d, "models", big)
    steps = plan(d, Observed.empty())
    bucket = "scarab-artifacts-123456789012-us-east-1"
    assert [c.operation for c in step(steps, f"s3.bucket {bucket}").calls] == [
        "CreateBucket",
        "PutPublicAccessBlock",
    ]
    upload, create, _ = step(steps, f"lambda.function {MODELS}").instructions
    body = FileBytes("/x.zip", "736861", LAMBDA_ZIP_LIMIT + 1)
    assert upload == UploadArtifact(bucket, f"{MODELS}/736861.zip", body, "123456789012")
    assert isinstance(create, ApiCall)
    assert create.params["Code"] == {"S3Bucket": bucket, "S3Key": f"{MODELS}/736861.zip"}
    # The small zip goes directly.
    create_small, _ = step(steps, f"lambda.function {ANALYZE}").instructions
    assert isinstance(create_small, ApiCall) and "ZipFile" in create_small.params["Code"]
    # The bucket exists: no step for it.
    obs = Observed.empty()
    obs.artifact_bucket_exists = True
    assert not any(s.resource == f"s3.bucket {bucket}" for s in plan(d, obs))


def test_every_delete_step_says_so(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    live, role = unit(obs).function, unit(obs).role
    assert obs.api is not None and live is not None and role is not None
    obs.api.resources["/stray"] = {"id": "rs", "methods": {}}
    obs.api.resources["/health"]["methods"]["DELETE"] = {}
    live.alias_policy[0]["Condition"]["ArnLike"]["AWS:SourceArn"] = "other"
    role.attached = {"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}
    obs.retired["scarab-dev"] = live_unit(d, d.function("analyze"))
    deletes = [s for s in plan(d, obs) if s.action == "delete"]
    assert len(deletes) == 6
    assert all(s.reason.startswith("deletes it: ") for s in deletes)


def test_destroy_keeps_a_role_another_region_uses(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    fn = d.names.function("analyze")
    found = DoomedFunction(function=True, permission=True, role=unit(obs).role)
    doomed = Doomed(rest_api_ids=["a1", "a2"], functions=[(fn, found)])
    steps = plan_destroy(d.names, doomed)
    assert [s.resource for s in steps] == [
        "apigateway.rest_api scarab-dev",
        "apigateway.rest_api scarab-dev",
        f"lambda.permission {ANALYZE} scarab-apigateway-invoke",
        f"lambda.function {ANALYZE}",
        f"iam.role {ANALYZE}-role",
    ]
    role = steps[-1].calls
    # logs, secret, cache, uploads and jobs
    assert [c.operation for c in role] == [*["DeleteRolePolicy"] * 5, "DeleteRole"]
    assert all(c.missing_ok for s in steps for c in s.calls)
    found.role_users = [f"the function {ANALYZE} in eu-west-1 still uses it"]
    assert f"iam.role {ANALYZE}-role" not in [s.resource for s in plan_destroy(d.names, doomed)]


# Moving a stage from the single function to its split functions -----------------------


def legacy_unit(tmp_path: Path) -> ObservedUnit:
    """The single function of a stage deployed before the split, as AWS has it."""
    cfg = load_config(tmp_path)
    old = desired_state(
        cfg, account_id="123456789012", region="us-east-1", partition="aws", codes=CODES,
        functions=(ALL_ROUTES,),
    )  # fmt: skip
    assert old.functions[0].name == "scarab-dev" and old.retired == ()
    return live_unit(old, old.functions[0])


def test_a_single_function_stage_is_split_and_the_old_function_goes_last(
    tmp_path: Path,
) -> None:
    d = desired(tmp_path)
    assert d.retired == (d.names.legacy,)
    obs = converged(d)
    obs.retired["scarab-dev"] = legacy_unit(tmp_path)
    # The API still routes everything to the old function.
    assert obs.api is not None
    legacy_uri = legacy_unit(tmp_path).function
    old_uri = (
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"
        "arn:aws:lambda:us-east-1:123456789012:function:scarab-dev/invocations"
    )
    assert legacy_uri is not None
    for info in obs.api.resources.values():
        for method in info["methods"].values():
            integ = method["methodIntegration"]
            if integ.get("type") == "AWS_PROXY":
                integ["uri"] = old_uri
    unit(obs).function = None  # the new functions do not exist yet
    unit(obs, "models").function = None
    steps = plan(d, obs)
    resources = [s.resource for s in steps]
    # Each new function exists (with its permission) before the API routes to it, the
    # new deployment before the old function goes, and the old log group stays.
    i = resources.index
    assert i(f"lambda.function {MODELS}") < i("apigateway.rest_api scarab-dev POST /analyze")
    assert i(f"lambda.alias {ANALYZE}:live") < i("apigateway.rest_api scarab-dev POST /analyze")
    assert i(alias_permission(ANALYZE)) < i("apigateway.rest_api scarab-dev POST /analyze")
    assert resources[-2:] == ["lambda.function scarab-dev", "iam.role scarab-dev-role"]
    assert i("apigateway.stage dev") < i("lambda.function scarab-dev")
    assert not any(r == "logs.group /aws/lambda/scarab-dev" for r in resources)
    # A retargeted route is one PutIntegration: the method never goes missing.
    (put,) = step(steps, "apigateway.rest_api scarab-dev POST /analyze").calls
    assert put.operation == "PutIntegration" and f"{ANALYZE}:live/" in put.params["uri"]
    delete = step(steps, "lambda.function scarab-dev")
    assert delete.action == "delete" and delete.reason.startswith("deletes it: replaced by")
    role_calls = [c.operation for c in step(steps, "iam.role scarab-dev-role").calls]
    # logs, secret, cache, uploads, jobs
    assert role_calls == [*["DeleteRolePolicy"] * 5, "DeleteRole"]


def test_an_old_function_of_someone_else_is_never_retired(tmp_path: Path) -> None:
    d = desired(tmp_path)
    obs = converged(d)
    old = legacy_unit(tmp_path)
    assert old.function is not None and old.role is not None
    old.function.tags = {"scarab:app": "scarab-dev", "scarab:stage": "other"}
    old.role.tags = {}
    obs.retired["scarab-dev"] = old
    assert plan(d, obs) == []
    # A role another region's function uses stays, even when the function here goes.
    old = legacy_unit(tmp_path)
    old.role_users = ["the function scarab-dev in eu-west-1 still uses it"]
    obs.retired["scarab-dev"] = old
    assert kinds(plan(d, obs)) == [("delete", "lambda.function scarab-dev")]


def test_the_planners_are_pure() -> None:
    """The planners import models, observations and instructions; never boto3 or aws."""
    import ast

    deploy = Path(__file__).resolve().parents[2] / "tooling" / "scarab" / "deploy"
    allowed = {
        "__future__", "base64", "json", "pathlib", "typing", "scarab.deploy.instructions",
        "scarab.deploy.models", "scarab.deploy.planner_api", "scarab.deploy.reader",
        "scarab.errors", "scarab.naming", "scarab.functions", "re",
        "scarab.deploy.planner_registry", "scarab.deploy.planner_url",
        "scarab.deploy.planner_cache", "scarab.deploy.planner_versions", "hashlib",
        "dataclasses", "scarab.deploy.release_models", "scarab",  # scarab: its __version__
        "scarab.deploy.planner_alarms", "scarab.deploy.alarms", "scarab.deploy.planner_snapstart",
        "scarab.deploy.weights", "scarab.deploy.planner_uploads", "scarab.deploy.planner_jobs",
    }  # fmt: skip
    for name in (
        "planner.py", "planner_api.py", "planner_registry.py", "planner_url.py", "teardown.py",
        "planner_cache.py", "planner_versions.py", "planner_alarms.py", "planner_snapstart.py",
        "planner_uploads.py", "planner_jobs.py",
    ):  # fmt: skip
        tree = ast.parse((deploy / name).read_text())
        imported = {
            n.module if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in n.names
        }
        assert imported <= allowed, (name, imported - allowed)


# Versions and the live alias ----------------------------------------------------------


def with_versions(unit_: ObservedUnit, numbers: list[int], live: str, **weights: float) -> None:
    """Give the observed function versions `numbers` (the live one as deployed) and
    point `live` at `live` with `weights` (version -> weight)."""
    assert unit_.function is not None
    described = unit_.function.versions[0]["Description"]
    unit_.function.versions = [
        {
            "Version": str(n),
            "Description": described if str(n) == live else "scarab code=x config=y",
        }
        for n in numbers
    ]
    routing = {"AdditionalVersionWeights": {k.lstrip("v"): w for k, w in weights.items()}}
    unit_.function.aliases = {"live": {"FunctionVersion": live, "RoutingConfig": routing}}


def test_a_prune_in_a_publishing_run_counts_the_new_version(tmp_path: Path) -> None:
    d = desired(tmp_path, **{"functions.models.keep_versions": 3, "functions.models.memory": 1024})
    obs = converged(desired(tmp_path))
    with_versions(unit(obs, "models"), [1, 2, 3, 4, 5], live="5", v1=0.2)
    steps = plan(d, obs)
    assert kinds(steps) == [
        ("update", f"lambda.function {MODELS} configuration"),
        *release(MODELS),
        ("delete", f"lambda.versions {MODELS}"),
    ]
    prune = step(steps, f"lambda.versions {MODELS}")
    # The new one, 5 and 4 are the newest 3; 1 is weighted by live: 2 and 3 go.
    assert [c.params for c in prune.calls] == [
        {"FunctionName": MODELS, "Qualifier": "2"},
        {"FunctionName": MODELS, "Qualifier": "3"},
    ]
    assert all(c.missing_ok for c in prune.calls)
    assert prune.reason.startswith("deletes it")


def test_a_canary_weights_the_new_version_by_ref(tmp_path: Path) -> None:
    d = desired(tmp_path, **{"functions.models.memory": 1024})
    steps = plan(d, converged(desired(tmp_path)), canary_percent=5)
    publish, move = (
        step(steps, f"lambda.version {MODELS}"),
        step(steps, f"lambda.alias {MODELS}:live"),
    )
    (call,) = publish.calls
    assert call.operation == "PublishVersion" and call.output_var == "version_models"
    assert call.params["CodeSha256"] == "c2hh"  # Lambda refuses if $LATEST is other code
    assert move.calls[0].params == {
        "FunctionName": MODELS,
        "Name": "live",
        "FunctionVersion": "1",
        "RoutingConfig": {"AdditionalVersionWeights": {Ref("version_models"): 0.05}},
    }
