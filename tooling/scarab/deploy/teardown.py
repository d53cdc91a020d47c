"""The deletion plan of `scarab destroy`: what the reader found, in dependency order.

Pure, like the deploy planner: the same `Doomed` gives the same steps, run by the same
executor (or shown by the same display). Keys before their usage plan, the API before
the function's permission, the function before its role; the role only when no function
elsewhere uses it. The Gemini secret and the artifact bucket are kept (other stages and
a redeploy use them); the ECR repository goes only when asked.
"""

from __future__ import annotations

from scarab.deploy.instructions import ApiCall, EmptyBucket, Step
from scarab.deploy.models import URL_PERMISSION_SID
from scarab.deploy.reader import Doomed, DoomedFunction, is_stage_key_name
from scarab.deploy.release_models import LIVE_ALIAS
from scarab.naming import FunctionNames, Names


def _why(detail: str = "") -> str:
    return "destroy deletes it" + (f" ({detail})" if detail else "")


def _delete(service: str, operation: str, **params: object) -> ApiCall:
    # Already gone (a re-run, another destroy) is fine: the target is what we wanted.
    return ApiCall(service, operation, dict(params), missing_ok=True)


def plan_destroy(names: Names, doomed: Doomed) -> list[Step]:
    steps: list[Step] = []
    for key in doomed.keys:
        calls = []
        if key.in_plan and doomed.primary_plan_id is not None:
            calls.append(
                _delete(
                    "apigateway",
                    "DeleteUsagePlanKey",
                    usagePlanId=doomed.primary_plan_id,
                    keyId=key.id,
                )
            )
        if not is_stage_key_name(names, key.name):
            # A key scarab did not create, put in the stage's plan by hand: it may serve
            # other plans too, so only its place in this stage's plan goes.
            if calls:
                why = f"destroy takes it out of {names.usage_plan} (the key is not the stage's)"
                steps.append(
                    Step(f"apigateway.usage_plan_key {key.name}", "delete", why, tuple(calls))
                )
            continue
        calls.append(_delete("apigateway", "DeleteApiKey", apiKey=key.id))
        steps.append(Step(f"apigateway.api_key {key.name}", "delete", _why(key.id), tuple(calls)))
    for plan in doomed.usage_plans:
        # A usage plan cannot be deleted while it still lists API stages.
        calls = [
            _delete(
                "apigateway",
                "UpdateUsagePlan",
                usagePlanId=plan["id"],
                patchOperations=[
                    {"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"}
                ],
            )
            for s in plan.get("apiStages") or []
        ]
        calls.append(_delete("apigateway", "DeleteUsagePlan", usagePlanId=plan["id"]))
        res = f"apigateway.usage_plan {names.usage_plan}"
        steps.append(Step(res, "delete", _why(plan["id"]), tuple(calls)))
    for api_id in doomed.rest_api_ids:
        call = _delete("apigateway", "DeleteRestApi", restApiId=api_id)
        steps.append(Step(f"apigateway.rest_api {names.rest_api}", "delete", _why(api_id), (call,)))
    # The queue's mappings before the function they invoke.
    for uuid, target in doomed.jobs_mappings:
        call = _delete("lambda", "DeleteEventSourceMapping", UUID=uuid)
        why = _why(f"{uuid}: it hands the failed jobs to the function")
        res = f"lambda.event_source_mapping {names.jobs_dlq} -> {target}"
        steps.append(Step(res, "delete", why, (call,)))
    for fn, found in doomed.functions:
        steps += _function_steps(names, fn, found)
    if doomed.jobs_queue_url:
        call = _delete("sqs", "DeleteQueue", QueueUrl=doomed.jobs_queue_url)
        why = _why("the jobs' dead-letter queue")
        steps.append(Step(f"sqs.queue {names.jobs_dlq}", "delete", why, (call,)))
    if doomed.jobs_table:
        call = _delete("dynamodb", "DeleteTable", TableName=doomed.jobs_table)
        why = _why("the asynchronous jobs: transient by design (a TTL of [jobs] ttl_hours)")
        steps.append(Step(f"dynamodb.table {doomed.jobs_table}", "delete", why, (call,)))
    if doomed.uploads_bucket and doomed.owner:
        empty = EmptyBucket(doomed.uploads_bucket, doomed.owner)
        delete = _delete(
            "s3", "DeleteBucket", Bucket=doomed.uploads_bucket, ExpectedBucketOwner=doomed.owner
        )
        why = _why("uploads live a day at most; every object and version goes")
        steps.append(Step(f"s3.bucket {doomed.uploads_bucket}", "delete", why, (empty, delete)))
    if doomed.cache_table:
        call = _delete("dynamodb", "DeleteTable", TableName=doomed.cache_table)
        why = _why("the shared response cache: copies of answers only")
        steps.append(Step(f"dynamodb.table {doomed.cache_table}", "delete", why, (call,)))
    if doomed.include_models and doomed.registry_table:
        call = _delete("dynamodb", "DeleteTable", TableName=doomed.registry_table)
        why = _why("--include-models: every pushed model's record goes")
        steps.append(Step(f"dynamodb.table {doomed.registry_table}", "delete", why, (call,)))
    if doomed.include_models and doomed.models_bucket and doomed.owner:
        empty = EmptyBucket(doomed.models_bucket, doomed.owner)
        delete = _delete(
            "s3", "DeleteBucket", Bucket=doomed.models_bucket, ExpectedBucketOwner=doomed.owner
        )
        why = _why("--include-models: every model artifact and version goes")
        steps.append(Step(f"s3.bucket {doomed.models_bucket}", "delete", why, (empty, delete)))
    # The alarms before their topic; the budget (per account) with the stage.
    for start in range(0, len(doomed.alarm_names), 100):  # DeleteAlarms takes up to 100
        batch = doomed.alarm_names[start : start + 100]
        call = _delete("cloudwatch", "DeleteAlarms", AlarmNames=batch)
        steps.append(Step(f"cloudwatch.alarms {', '.join(batch)}", "delete", _why(), (call,)))
    if doomed.alarm_topic_arn:
        call = _delete("sns", "DeleteTopic", TopicArn=doomed.alarm_topic_arn)
        why = _why("and its subscriptions")
        steps.append(Step(f"sns.topic {names.alarm_topic}", "delete", why, (call,)))
    if doomed.budget and doomed.owner:
        call = _delete("budgets", "DeleteBudget", AccountId=doomed.owner, BudgetName=doomed.budget)
        steps.append(Step(f"budgets.budget {doomed.budget}", "delete", _why(), (call,)))
    if doomed.ecr_repository:
        call = _delete("ecr", "DeleteRepository", repositoryName=names.ecr_repository, force=True)
        why = _why("--include-images: its images go too")
        steps.append(Step(f"ecr.repository {names.ecr_repository}", "delete", why, (call,)))
    return steps


def _function_steps(names: Names, fn: FunctionNames, found: DoomedFunction) -> list[Step]:
    """One function, then its log group, then its role (when no function elsewhere uses
    it): the function's permission before the function."""
    steps: list[Step] = []
    if found.url:
        # DeleteFunction would take the URL with it; the plan says so rather than hide it.
        call = _delete("lambda", "DeleteFunctionUrlConfig", FunctionName=fn.function)
        steps.append(Step(f"lambda.url {fn.function}", "delete", _why(), (call,)))
    if found.url_permission:
        call = _delete(
            "lambda", "RemovePermission", FunctionName=fn.function, StatementId=URL_PERMISSION_SID
        )
        res = f"lambda.permission {fn.function} {URL_PERMISSION_SID}"
        steps.append(Step(res, "delete", _why(), (call,)))
    if found.permission:
        call = _delete(
            "lambda", "RemovePermission", FunctionName=fn.function, StatementId=names.permission_sid
        )
        res = f"lambda.permission {fn.function} {names.permission_sid}"
        steps.append(Step(res, "delete", _why(), (call,)))
    steps += _alias_steps(names, fn, found)
    if found.function:
        # Its versions go with it.
        call = _delete("lambda", "DeleteFunction", FunctionName=fn.function)
        steps.append(Step(f"lambda.function {fn.function}", "delete", _why(), (call,)))
    if found.log_group:
        call = _delete("logs", "DeleteLogGroup", logGroupName=fn.log_group)
        steps.append(Step(f"logs.group {fn.log_group}", "delete", _why(), (call,)))
    role = found.role
    if role is not None and not found.role_users:
        calls = [
            _delete("iam", "DetachRolePolicy", RoleName=fn.role, PolicyArn=arn)
            for arn in sorted(role.attached)
        ]
        calls += [
            _delete("iam", "DeleteRolePolicy", RoleName=fn.role, PolicyName=name)
            for name in sorted(role.inline)
        ]
        calls.append(_delete("iam", "DeleteRole", RoleName=fn.role))
        why = _why("no function uses it any more")
        steps.append(Step(f"iam.role {fn.role}", "delete", why, tuple(calls)))
    return steps


def _alias_steps(names: Names, fn: FunctionNames, found: DoomedFunction) -> list[Step]:
    """The `live` alias's URL and permissions, then every alias of the function (deleting
    the function would take them; the plan names them)."""
    alias = {"FunctionName": fn.function, "Qualifier": LIVE_ALIAS}
    steps: list[Step] = []
    if found.invoke_config:
        call = _delete("lambda", "DeleteFunctionEventInvokeConfig", **alias)
        res = f"lambda.event_invoke_config {fn.function}:{LIVE_ALIAS}"
        steps.append(Step(res, "delete", _why(), (call,)))
    if found.alias_url:
        call = _delete("lambda", "DeleteFunctionUrlConfig", **alias)
        steps.append(Step(f"lambda.url {fn.function}:{LIVE_ALIAS}", "delete", _why(), (call,)))
    for present, sid in (
        (found.alias_url_permission, URL_PERMISSION_SID),
        (found.alias_permission, names.alias_permission_sid),
    ):
        if present:
            call = _delete("lambda", "RemovePermission", **alias, StatementId=sid)
            res = f"lambda.permission {fn.function}:{LIVE_ALIAS} {sid}"
            steps.append(Step(res, "delete", _why(), (call,)))
    for name in found.aliases:
        call = _delete("lambda", "DeleteAlias", FunctionName=fn.function, Name=name)
        steps.append(Step(f"lambda.alias {fn.function}:{name}", "delete", _why(), (call,)))
    return steps
