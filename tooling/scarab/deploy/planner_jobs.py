"""The jobs part of the plan: the table `<app>-<stage>-jobs` (DynamoDB's TTL on
`expiration`), the dead-letter queue `<app>-<stage>-jobs-dlq`, and on the job function's
`live` alias its asynchronous settings (EventInvokeConfig: `[jobs] retries`) and the
event source mapping that hands the queue's events back to it. Pure, like
deploy/planner.py, which plans the store before the functions (the function's
DeadLetterConfig names the queue, which must exist) and the alias's settings after the
release (the alias must exist).
"""

from __future__ import annotations

from scarab.deploy.instructions import ApiCall, Step, WaitForTable
from scarab.deploy.models import (
    JOBS_BATCH_SIZE,
    JOBS_KEY_ATTRIBUTE,
    JOBS_RESPONSE_TYPES,
    Desired,
    FunctionSpec,
    JobsSpec,
)
from scarab.deploy.planner_cache import ttl_call
from scarab.deploy.reader import ObservedJobs
from scarab.deploy.release_models import LIVE_ALIAS

TABLE_KEY = {
    "AttributeDefinitions": [{"AttributeName": JOBS_KEY_ATTRIBUTE, "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": JOBS_KEY_ATTRIBUTE, "KeyType": "HASH"}],
}
# A mapping in these states reads the queue (or is about to).
_RUNNING = {"Enabled", "Enabling", "Updating", "Creating"}


def plan_jobs_store(d: Desired, obs: ObservedJobs | None) -> list[Step]:
    """The table (then its TTL) and the queue, each repaired when it drifts."""
    jobs = d.jobs
    if jobs is None:
        return []
    live = obs or ObservedJobs()
    steps: list[Step] = []
    res = f"dynamodb.table {jobs.table}"
    if not live.table_exists:
        create = ApiCall(
            "dynamodb",
            "CreateTable",
            {
                "TableName": jobs.table,
                **TABLE_KEY,
                "BillingMode": "PAY_PER_REQUEST",
                "Tags": [{"Key": k, "Value": v} for k, v in jobs.tags.items()],
            },
        )
        why = "missing (the asynchronous jobs and their idempotency records)"
        steps.append(Step(res, "create", why, (create, WaitForTable(jobs.table), ttl_call(jobs))))
    elif live.ttl_attribute != jobs.ttl_attribute or not live.ttl_enabled:
        why = (
            f"TTL is off (jobs would never expire); it goes on {jobs.ttl_attribute}"
            if not live.ttl_enabled
            else f"TTL is on {live.ttl_attribute}, not {jobs.ttl_attribute}"
        )
        steps.append(Step(f"{res} ttl", "update", why, (ttl_call(jobs),)))
    res = f"sqs.queue {jobs.queue}"
    want = jobs.queue_attributes
    if live.queue_url is None:
        create = ApiCall(
            "sqs",
            "CreateQueue",
            {"QueueName": jobs.queue, "Attributes": want, "tags": dict(jobs.tags)},
        )
        steps.append(Step(res, "create", "missing (the jobs' dead-letter queue)", (create,)))
        return steps
    changed = {k: v for k, v in want.items() if live.queue_attributes.get(k) != v}
    if changed:
        put = ApiCall("sqs", "SetQueueAttributes", {"QueueUrl": live.queue_url, "Attributes": want})
        why = ", ".join(f"{k} {live.queue_attributes.get(k)} -> {v}" for k, v in changed.items())
        steps.append(Step(f"{res} attributes", "update", why, (put,)))
    if any(live.queue_tags.get(k) != v for k, v in jobs.tags.items()):
        tag = ApiCall("sqs", "TagQueue", {"QueueUrl": live.queue_url, "Tags": dict(jobs.tags)})
        steps.append(Step(f"{res} tags", "update", "tags differ", (tag,)))
    return steps


def plan_jobs_invoke(d: Desired, obs: ObservedJobs | None) -> list[Step]:
    """The `live` alias's EventInvokeConfig and the queue's mapping to the alias."""
    jobs = d.jobs
    if jobs is None:
        return []
    fn = d.function(jobs.function_key)
    live = obs or ObservedJobs()
    return _invoke_config(fn, jobs, live) + _mapping(fn, jobs, live)


def _invoke_config(fn: FunctionSpec, jobs: JobsSpec, live: ObservedJobs) -> list[Step]:
    want = jobs.invoke_config
    res = f"lambda.event_invoke_config {fn.name}:{LIVE_ALIAS}"
    target = {"FunctionName": fn.name, "Qualifier": LIVE_ALIAS}
    put = ApiCall("lambda", "PutFunctionEventInvokeConfig", {**target, **want})
    have = live.invoke_config
    if have is None:
        why = "missing (Lambda's retries of a failed job run: [jobs] retries)"
        return [Step(res, "create", why, (put,))]
    diffs = [f"{k} {have.get(k)} -> {v}" for k, v in want.items() if have.get(k) != v]
    if not diffs:
        return []
    # Put overwrites the whole configuration on AWS; emulators (moto) keep the first one
    # they were given, so it is deleted first (Lambda's defaults hold for that moment).
    delete = ApiCall("lambda", "DeleteFunctionEventInvokeConfig", target, missing_ok=True)
    return [Step(res, "update", "; ".join(diffs), (delete, put))]


def _mapping(fn: FunctionSpec, jobs: JobsSpec, live: ObservedJobs) -> list[Step]:
    """One mapping from the queue to the alias, batches of 10 with partial failures;
    mappings of the queue to the function's other qualifiers go."""
    res = f"lambda.event_source_mapping {jobs.queue} -> {fn.name}:{LIVE_ALIAS}"
    settings = {
        "BatchSize": JOBS_BATCH_SIZE,
        "FunctionResponseTypes": list(JOBS_RESPONSE_TYPES),
    }
    ours = [
        m
        for m in live.mappings
        if str(m.get("FunctionArn") or "") in (fn.arn, f"{fn.arn}:{LIVE_ALIAS}")
        or str(m.get("FunctionArn") or "").startswith(f"{fn.arn}:")
    ]
    on_alias = [m for m in ours if m.get("FunctionArn") == fn.alias_arn]
    keep = on_alias[0] if on_alias else (ours[0] if ours else None)
    steps: list[Step] = []
    if keep is None:
        create = ApiCall(
            "lambda",
            "CreateEventSourceMapping",
            {"EventSourceArn": jobs.queue_arn, "FunctionName": fn.alias_arn, **settings},
            # Lambda checks the role may receive from the queue: a policy just put may
            # not have reached it yet.
            retry_while_role_not_ready=True,
        )
        why = "missing (failed job runs come back from the dead-letter queue as failed)"
        steps.append(Step(res, "create", why, (create,)))
    else:
        diffs = []
        if keep.get("FunctionArn") != fn.alias_arn:
            diffs.append(f"targets {keep.get('FunctionArn')}")
        if keep.get("BatchSize") != JOBS_BATCH_SIZE:
            diffs.append(f"BatchSize {keep.get('BatchSize')} -> {JOBS_BATCH_SIZE}")
        if sorted(keep.get("FunctionResponseTypes") or []) != sorted(JOBS_RESPONSE_TYPES):
            diffs.append("FunctionResponseTypes -> ReportBatchItemFailures")
        if keep.get("State") not in _RUNNING:
            diffs.append(f"state {keep.get('State')} -> Enabled")
        if diffs:
            update = ApiCall(
                "lambda",
                "UpdateEventSourceMapping",
                {"UUID": keep["UUID"], "FunctionName": fn.alias_arn, "Enabled": True, **settings},
                retry_while_role_not_ready=True,
            )
            steps.append(Step(res, "update", "; ".join(diffs), (update,)))
    for extra in ours:
        if extra is keep:
            continue
        delete = ApiCall(
            "lambda", "DeleteEventSourceMapping", {"UUID": extra["UUID"]}, missing_ok=True
        )
        why = "deletes it: a second mapping of the queue to the function"
        steps.append(Step(f"lambda.event_source_mapping {extra['UUID']}", "delete", why, (delete,)))
    return steps
