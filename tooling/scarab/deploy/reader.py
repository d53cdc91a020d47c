"""Read what a stage looks like in AWS right now (read-only calls only).

Resources are found by the ids in the state record first, then by name and tags,
so a lost state record never leads to duplicates.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from scarab.aws import Aws, call, error_code, explain
from scarab.deploy.models import URL_PERMISSION_SID, hosted_endpoint
from scarab.deploy.release_models import LIVE_ALIAS
from scarab.deploy.routes import GATEWAY_RESPONSE_TYPES
from scarab.deploy.state import StageState
from scarab.errors import ScarabError
from scarab.naming import TAG_STAGE, FunctionNames, Names

_NOT_FOUND = {
    "NoSuchEntity",
    "NoSuchEntityException",
    "ResourceNotFoundException",
    "NotFoundException",
    "RepositoryNotFoundException",
    "ImageNotFoundException",
    "ParameterNotFound",
    "404",
    "NoSuchKey",
    "NotFound",  # SNS: no such topic
}


def _missing(exc: Exception) -> bool:
    return error_code(exc) in _NOT_FOUND


@dataclass
class ObservedRole:
    arn: str
    trust: dict[str, Any]
    attached: set[str]
    inline: dict[str, dict[str, Any]]  # every inline policy: name -> document
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class ObservedFunction:
    config: dict[str, Any]
    code: dict[str, Any]
    tags: dict[str, str]
    policy: list[dict[str, Any]]
    # GetFunctionUrlConfig's answer (FunctionUrl, AuthType, Cors) for the unqualified
    # function; None: it has no Function URL of its own (earlier scarab versions made one).
    url: dict[str, Any] | None = None
    # Its published versions (ListVersionsByFunction, without $LATEST) and its aliases
    # by name (ListAliases: FunctionVersion, RoutingConfig).
    versions: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The `live` alias's resource policy statements and its Function URL (as `url`).
    alias_policy: list[dict[str, Any]] = field(default_factory=list)
    alias_url: dict[str, Any] | None = None
    # The qualifiers (versions, aliases) with provisioned concurrency; read only for a
    # function that wants SnapStart (the two do not go together).
    provisioned: list[str] = field(default_factory=list)
    # An emulator that keeps no DeadLetterConfig (moto answers none, whatever was set):
    # the function's dead-letter target is unknown, not missing.
    dead_letter_unreported: bool = False

    @property
    def env(self) -> dict[str, str]:
        return dict(self.config.get("Environment", {}).get("Variables", {}) or {})


@dataclass
class ObservedApi:
    id: str
    resources: dict[str, dict[str, Any]]  # path -> {"id", "methods": {verb: method}}
    gateway_responses: dict[str, dict[str, str]]
    stage_exists: bool
    stage_fingerprint: str | None
    binary_media_types: tuple[str, ...] = ()
    stage_tags: dict[str, str] = field(default_factory=dict)


@dataclass
class ObservedKey:
    id: str
    name: str
    enabled: bool
    created: str
    in_plan: bool


@dataclass
class ObservedPlan:
    id: str
    throttle: dict[str, Any]
    quota: dict[str, Any]
    api_stages: list[dict[str, Any]]


@dataclass
class ObservedUnit:
    """One function as AWS has it, with its role and log group (None: missing)."""

    role: ObservedRole | None = None
    function: ObservedFunction | None = None
    log_group_exists: bool = False
    log_group_retention: int | None = None
    # Why a retired function's role must stay (used by a function elsewhere).
    role_users: list[str] = field(default_factory=list)


@dataclass
class ObservedRegistry:
    """The stage's model registry as found: the table, the bucket and its settings, and
    what of the packaged models is already there."""

    table_exists: bool = False
    bucket_exists: bool = False
    versioning: bool = False
    public_access_blocked: bool = False
    encrypted: bool = False
    objects: set[str] = field(default_factory=set)  # keys of the seeds' files present
    versions: set[tuple[str, str]] = field(default_factory=set)  # (name, version) present
    # name -> the aliases item's plain attributes ({"live", "history", "revision", ...})
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    # name -> (live version, its source: "packaged" | "push" | ...)
    live: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The SageMaker endpoints registry versions name (host = "sagemaker:<endpoint>").
    hosted_endpoints: set[str] = field(default_factory=set)


@dataclass
class ObservedCache:
    """The stage's shared response cache table as found (DescribeTable, its TTL, tags)."""

    table_exists: bool = False
    ttl_enabled: bool = False  # ENABLED or ENABLING
    ttl_attribute: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class ObservedUploads:
    """The stage's uploads bucket as found, with the settings deploy gives it."""

    bucket_exists: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    public_access_blocked: bool = False
    encrypted: bool = False
    owner_enforced: bool = False
    lifecycle: list[dict[str, Any]] = field(default_factory=list)  # its Rules
    cors: list[dict[str, Any]] = field(default_factory=list)  # its CORSRules


@dataclass
class ObservedJobs:
    """The jobs table, the dead-letter queue, and the job function's asynchronous
    settings on its `live` alias, as found."""

    table_exists: bool = False
    ttl_enabled: bool = False
    ttl_attribute: str | None = None
    table_tags: dict[str, str] = field(default_factory=dict)
    queue_url: str | None = None
    queue_attributes: dict[str, str] = field(default_factory=dict)
    queue_tags: dict[str, str] = field(default_factory=dict)
    # GetFunctionEventInvokeConfig of the `live` alias (None: none, or no alias yet).
    invoke_config: dict[str, Any] | None = None
    # The event source mappings reading the queue (ListEventSourceMappings).
    mappings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ObservedAlarms:
    """The stage's alarms, their topic and its subscriptions, and its budget, as found.

    `alarms` holds every alarm named with the stage's prefix; `<app>-<stage>-` also begins
    stage `<stage>-x`'s names, so only those tagged for the stage are ever deleted."""

    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> MetricAlarm
    alarm_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    topic_exists: bool = False
    topic_arn: str | None = None
    topic_tags: dict[str, str] = field(default_factory=dict)
    # The topic's subscriptions: {"SubscriptionArn", "Protocol", "Endpoint"}.
    subscriptions: list[dict[str, str]] = field(default_factory=list)
    # DescribeBudget's Budget (None: no budget of the stage's name).
    budget: dict[str, Any] | None = None
    budget_notifications: list[dict[str, Any]] = field(default_factory=list)
    # Each notification's email addresses, by (type, threshold); None: not readable here.
    budget_emails: dict[tuple[str, float], list[str]] | None = None


@dataclass
class Observed:
    # By catalog name (analyze, models): the stage's functions.
    units: dict[str, ObservedUnit] = field(default_factory=dict)
    # By function name: functions of an older layout still there (see Desired.retired).
    retired: dict[str, ObservedUnit] = field(default_factory=dict)
    api: ObservedApi | None = None
    plan: ObservedPlan | None = None
    keys: list[ObservedKey] = field(default_factory=list)
    ecr_repository_uri: str | None = None
    ecr_has_tag: bool = False
    artifact_bucket_exists: bool = False
    registry: ObservedRegistry | None = None
    cache: ObservedCache | None = None
    uploads: ObservedUploads | None = None
    jobs: ObservedJobs | None = None
    alarms: ObservedAlarms | None = None

    @classmethod
    def empty(cls) -> Observed:
        return cls()

    def unit(self, key: str) -> ObservedUnit:
        """Function `key` as found (an empty unit when nothing of it exists)."""
        return self.units.get(key) or ObservedUnit()


def _decode_policy(doc: Any) -> dict[str, Any]:
    if isinstance(doc, str):
        return dict(json.loads(urllib.parse.unquote(doc)))
    return dict(doc)


def read_role(aws: Aws, names: FunctionNames) -> ObservedRole | None:
    iam = aws.client("iam")
    try:
        role = call(iam.get_role, RoleName=names.role)["Role"]
    except Exception as exc:
        if _missing(exc):
            return None
        raise
    attached = {
        p["PolicyArn"]
        for p in call(iam.list_attached_role_policies, RoleName=names.role)["AttachedPolicies"]
    }
    inline: dict[str, dict[str, Any]] = {}
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=names.role):
        for policy_name in page.get("PolicyNames", []):
            try:
                got = call(iam.get_role_policy, RoleName=names.role, PolicyName=policy_name)
            except Exception as exc:
                if not _missing(exc):
                    raise
                continue  # deleted between the two calls
            inline[policy_name] = _decode_policy(got["PolicyDocument"])
    return ObservedRole(
        arn=role["Arn"],
        trust=_decode_policy(role.get("AssumeRolePolicyDocument", {})),
        attached=attached,
        inline=inline,
        tags={str(t["Key"]): str(t["Value"]) for t in role.get("Tags") or []},
    )


def read_function(
    aws: Aws, names: FunctionNames, url_on_alias: bool = False
) -> ObservedFunction | None:
    """The function, its versions and aliases, and the policies and Function URLs of the
    function and of its `live` alias. `url_on_alias`: the state record says the URL
    scarab made is the alias's (see read_function_urls)."""
    lam = aws.client("lambda")
    try:
        got = call(lam.get_function, FunctionName=names.function)
    except Exception as exc:
        if _missing(exc):
            return None
        raise
    arn = str(got["Configuration"].get("FunctionArn", ""))
    statements = [s for s in read_policy(aws, names.function) if not _qualified(s, arn)]
    versions = [
        dict(v)
        for page in lam.get_paginator("list_versions_by_function").paginate(
            FunctionName=names.function
        )
        for v in page.get("Versions", [])
        if v.get("Version") != "$LATEST"
    ]
    aliases = {
        str(a["Name"]): dict(a)
        for page in lam.get_paginator("list_aliases").paginate(FunctionName=names.function)
        for a in page.get("Aliases", [])
    }
    alias_policy: list[dict[str, Any]] = []
    if LIVE_ALIAS in aliases:
        alias_policy = [
            s
            for s in read_policy(aws, names.function, LIVE_ALIAS)
            if _qualified(s, arn) == LIVE_ALIAS
        ]
    url, alias_url = read_function_urls(aws, names.function, LIVE_ALIAS in aliases, url_on_alias)
    unreported = aws.local and "DeadLetterConfig" not in got["Configuration"]
    return ObservedFunction(
        config=got["Configuration"],
        code=got.get("Code", {}),
        tags=dict(got.get("Tags", {}) or {}),
        policy=statements,
        url=url,
        versions=versions,
        aliases=aliases,
        alias_policy=alias_policy,
        alias_url=alias_url,
        dead_letter_unreported=unreported,
    )


def read_policy(aws: Aws, function: str, qualifier: str | None = None) -> list[dict[str, Any]]:
    """The statements of the resource policy of `function` (or of its alias `qualifier`)."""
    params: dict[str, Any] = {"FunctionName": function}
    if qualifier:
        params["Qualifier"] = qualifier
    try:
        got = call(aws.client("lambda").get_policy, **params)
    except Exception as exc:
        if not _missing(exc):
            raise
        return []
    return list(json.loads(got["Policy"]).get("Statement", []))


def _qualified(statement: dict[str, Any], function_arn: str) -> str | None:
    """The qualifier a statement's Resource names (None: the function itself). AWS keeps
    one policy per qualifier; emulators answer every statement for either, each with
    its Resource, so statements are sorted by it."""
    resource = str(statement.get("Resource") or function_arn)
    if function_arn and resource.startswith(function_arn + ":"):
        return resource[len(function_arn) + 1 :]
    return None


def read_function_url(
    aws: Aws, function: str, qualifier: str | None = None
) -> dict[str, Any] | None:
    """The Function URL configuration of the function (or of its alias `qualifier`),
    or None when it has none."""
    params: dict[str, Any] = {"FunctionName": function}
    if qualifier:
        params["Qualifier"] = qualifier
    try:
        got = call(aws.client("lambda").get_function_url_config, **params)
    except Exception as exc:
        if _missing(exc):
            return None
        raise
    return {k: got.get(k) for k in ("FunctionUrl", "AuthType", "Cors", "FunctionArn")}


def read_function_urls(
    aws: Aws, function: str, has_alias: bool, url_on_alias: bool
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the function's own Function URL, the `live` alias's). AWS keeps one per
    qualifier, each answering with its FunctionArn. An emulator that keeps one URL per
    function answers the same URL for both, with the unqualified ARN (moto does): that
    one is the alias's when the state record says scarab made it there."""
    own = read_function_url(aws, function)
    if not has_alias:
        return own, None
    alias = read_function_url(aws, function, LIVE_ALIAS)
    if own is None or alias is None or own.get("FunctionUrl") != alias.get("FunctionUrl"):
        return own, alias
    if str(alias.get("FunctionArn") or "").endswith(f":{LIVE_ALIAS}") or url_on_alias:
        return None, alias
    return own, None


def read_provisioned_concurrency(aws: Aws, function: str) -> list[str]:
    """The qualifiers of `function` (versions, aliases) that have provisioned concurrency
    configured. An emulator without the API (moto answers a bare 404) has none."""
    lam = aws.client("lambda")
    qualifiers: list[str] = []
    marker: str | None = None
    while True:
        params: dict[str, Any] = {"FunctionName": function}
        if marker:
            params["Marker"] = marker
        try:
            got = call(lam.list_provisioned_concurrency_configs, **params)
        except Exception as exc:
            if _missing(exc):
                return qualifiers
            raise
        for item in got.get("ProvisionedConcurrencyConfigs") or []:
            qualifiers.append(str(item.get("FunctionArn", "")).rsplit(":", 1)[-1])
        marker = got.get("NextMarker")
        if not marker:
            return sorted(qualifiers)


def read_log_group(aws: Aws, names: FunctionNames) -> tuple[bool, int | None]:
    logs = aws.client("logs")
    # By prefix, so every page: /aws/lambda/app-dev-* groups may come before app-dev's.
    for page in logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=names.log_group
    ):
        for group in page.get("logGroups", []):
            if group["logGroupName"] == names.log_group:
                return True, group.get("retentionInDays")
    return False, None


def find_rest_api(aws: Aws, names: Names, known_id: str | None) -> str | None:
    apigw = aws.client("apigateway")
    if known_id:
        try:
            api = call(apigw.get_rest_api, restApiId=known_id)
            if api.get("name") == names.rest_api:
                return known_id
        except Exception as exc:
            if not _missing(exc):
                raise
    candidates = []
    for page in apigw.get_paginator("get_rest_apis").paginate():
        for api in page.get("items", []):
            if api.get("name") == names.rest_api:
                candidates.append(api)
    if not candidates:
        return None
    # Prefer one tagged for this stage; otherwise the oldest.
    tagged = [a for a in candidates if (a.get("tags") or {}).get(TAG_STAGE) == names.stage]
    pool = tagged or candidates
    pool.sort(key=lambda a: str(a.get("createdDate", "")))
    return str(pool[0]["id"])


def read_api(aws: Aws, names: Names, known_id: str | None) -> ObservedApi | None:
    api_id = find_rest_api(aws, names, known_id)
    if api_id is None:
        return None
    apigw = aws.client("apigateway")
    binary = call(apigw.get_rest_api, restApiId=api_id).get("binaryMediaTypes") or []
    resources: dict[str, dict[str, Any]] = {}
    for page in apigw.get_paginator("get_resources").paginate(restApiId=api_id, embed=["methods"]):
        for res in page.get("items", []):
            resources[res["path"]] = {"id": res["id"], "methods": res.get("resourceMethods") or {}}
    gateway: dict[str, dict[str, str]] = {}
    items = call(apigw.get_gateway_responses, restApiId=api_id).get("items", [])
    for item in items:
        if item.get("responseType") in GATEWAY_RESPONSE_TYPES:
            gateway[item["responseType"]] = dict(item.get("responseParameters") or {})
    fingerprint = None
    stage_tags: dict[str, str]
    try:
        stage = call(apigw.get_stage, restApiId=api_id, stageName=names.stage)
        stage_exists = True
        stage_tags = dict(stage.get("tags") or {})
        if stage.get("deploymentId"):
            dep = call(apigw.get_deployment, restApiId=api_id, deploymentId=stage["deploymentId"])
            fingerprint = dep.get("description")
    except Exception as exc:
        if not _missing(exc):
            raise
        stage_exists, stage_tags = False, {}
    return ObservedApi(
        api_id, resources, gateway, stage_exists, fingerprint, tuple(str(t) for t in binary),
        stage_tags,
    )  # fmt: skip


def find_usage_plan(aws: Aws, names: Names, known_id: str | None) -> dict[str, Any] | None:
    apigw = aws.client("apigateway")
    if known_id:
        try:
            plan = call(apigw.get_usage_plan, usagePlanId=known_id)
            if plan.get("name") == names.usage_plan:
                return dict(plan)
        except Exception as exc:
            if not _missing(exc):
                raise
    for page in apigw.get_paginator("get_usage_plans").paginate():
        for plan in page.get("items", []):
            if plan.get("name") == names.usage_plan:
                return dict(plan)
    return None


def read_plan_and_keys(
    aws: Aws, names: Names, known_id: str | None
) -> tuple[ObservedPlan | None, list[ObservedKey]]:
    apigw = aws.client("apigateway")
    raw = find_usage_plan(aws, names, known_id)
    plan = None
    in_plan: set[str] = set()
    if raw is not None:
        plan = ObservedPlan(
            id=raw["id"],
            throttle=dict(raw.get("throttle") or {}),
            quota=dict(raw.get("quota") or {}),
            api_stages=list(raw.get("apiStages") or []),
        )
        for page in apigw.get_paginator("get_usage_plan_keys").paginate(usagePlanId=raw["id"]):
            in_plan.update(k["id"] for k in page.get("items", []))
    keys: list[ObservedKey] = []
    seen: set[str] = set()
    for page in apigw.get_paginator("get_api_keys").paginate(
        nameQuery=names.key_prefix, includeValues=False
    ):
        for key in page.get("items", []):
            if not is_stage_key_name(names, str(key.get("name", ""))):
                continue
            seen.add(key["id"])
            keys.append(_key(key, key["id"] in in_plan))
    for key_id in sorted(in_plan - seen):  # keys in the plan under other names
        try:
            keys.append(_key(call(apigw.get_api_key, apiKey=key_id), True))
        except Exception as exc:
            if not _missing(exc):
                raise
    return plan, keys


def is_stage_key_name(names: Names, name: str) -> bool:
    """True for <app>-<stage>-key-<N> exactly: stage `dev`'s prefix must not match the keys
    of stage `dev-key-x` (scarab-dev-key-x-key-1). Keys under other names (`keys create
    NAME`) belong to the stage through its usage plan."""
    rest = name.removeprefix(names.key_prefix)
    return rest != name and rest.isdigit()


def _key(raw: dict[str, Any], in_plan: bool) -> ObservedKey:
    return ObservedKey(
        id=raw["id"],
        name=str(raw.get("name", "")),
        enabled=bool(raw.get("enabled", False)),
        created=str(raw.get("createdDate", "")),
        in_plan=in_plan,
    )


def read_ecr(aws: Aws, names: Names, tag: str | None) -> tuple[str | None, bool]:
    ecr = aws.client("ecr")
    try:
        repo = call(ecr.describe_repositories, repositoryNames=[names.ecr_repository])
    except Exception as exc:
        if _missing(exc):
            return None, False
        raise
    uri = str(repo["repositories"][0]["repositoryUri"])
    if tag is None:
        return uri, False
    try:
        call(
            ecr.describe_images,
            repositoryName=names.ecr_repository,
            imageIds=[{"imageTag": tag}],
        )
        return uri, True
    except Exception as exc:
        if _missing(exc):
            return uri, False
        raise


def read_artifact_bucket(aws: Aws, bucket: str, owner: str) -> bool:
    """Whether the artifact bucket exists and is this account's.

    The check names the expected owner, so a bucket of that name in another account is
    refused (403) rather than trusted with the function's code.
    """
    try:
        call(aws.client("s3").head_bucket, Bucket=bucket, ExpectedBucketOwner=owner)
        return True
    except Exception as exc:
        code = error_code(exc)
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return False
        if code in {"403", "AccessDenied", "Forbidden"}:
            raise ScarabError(
                f"The artifact bucket {bucket} exists but is not this account's ({owner}),"
                " or this identity may not read it; scarab will not upload the function's"
                " code there."
            ) from None
        raise


_ALL_BLOCKED = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _plain(attr: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as plain data (the few types the registry uses)."""
    if "S" in attr:
        return attr["S"]
    if "N" in attr:
        return int(attr["N"]) if attr["N"].lstrip("-").isdigit() else float(attr["N"])
    if "L" in attr:
        return [_plain(a) for a in attr["L"]]
    if "BOOL" in attr:
        return bool(attr["BOOL"])
    return None


def read_cache(aws: Aws, table: str) -> ObservedCache:
    """The cache table, whether DynamoDB's TTL is on for it and on which attribute."""
    ddb = aws.client("dynamodb")
    obs = ObservedCache()
    try:
        described = call(ddb.describe_table, TableName=table)["Table"]
    except Exception as exc:
        if _missing(exc):
            return obs
        raise
    obs.table_exists = True
    ttl = call(ddb.describe_time_to_live, TableName=table).get("TimeToLiveDescription", {})
    obs.ttl_enabled = ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
    obs.ttl_attribute = ttl.get("AttributeName")
    got = call(ddb.list_tags_of_resource, ResourceArn=described["TableArn"])
    obs.tags = {t["Key"]: t["Value"] for t in got.get("Tags", [])}
    return obs


def _tags(got: dict[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in got.get("Tags") or []}


def read_alarms(aws: Aws, names: Names, topic_arn: str) -> ObservedAlarms:
    """The stage's alarms (by name prefix, kept only when tagged for the stage), the
    alarm topic `topic_arn` with its subscriptions, and the stage's budget."""
    obs = ObservedAlarms()
    cw = aws.client("cloudwatch")
    pages = cw.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=names.alarm_prefix, AlarmTypes=["MetricAlarm"]
    )
    for page in pages:
        for alarm in page.get("MetricAlarms", []):
            tags = _tags(call(cw.list_tags_for_resource, ResourceARN=alarm["AlarmArn"]))
            obs.alarms[alarm["AlarmName"]] = alarm
            obs.alarm_tags[alarm["AlarmName"]] = tags
    sns = aws.client("sns")
    try:
        call(sns.get_topic_attributes, TopicArn=topic_arn)
        obs.topic_exists, obs.topic_arn = True, topic_arn
    except Exception as exc:
        if not _missing(exc):
            raise
    if obs.topic_exists:
        obs.topic_tags = _tags(call(sns.list_tags_for_resource, ResourceArn=topic_arn))
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            obs.subscriptions += [
                {k: str(sub.get(k, "")) for k in ("SubscriptionArn", "Protocol", "Endpoint")}
                for sub in page.get("Subscriptions", [])
            ]
    read_budget(aws, names, obs)
    return obs


def read_budget(aws: Aws, names: Names, obs: ObservedAlarms) -> None:
    """The stage's budget and its notifications (and, where the service answers it, each
    notification's subscribers) into `obs`."""
    budgets = aws.client("budgets")
    account = aws.account_id
    try:
        got = call(budgets.describe_budget, AccountId=account, BudgetName=names.budget)
    except Exception as exc:
        if _missing(exc):
            return
        raise
    obs.budget = dict(got["Budget"])
    notes = call(
        budgets.describe_notifications_for_budget, AccountId=account, BudgetName=names.budget
    )
    obs.budget_notifications = list(notes.get("Notifications") or [])
    if aws.local:
        # moto's budgets answers no DescribeSubscribersForNotification (HTTP 500): on an
        # emulator the address is not compared (budget_emails stays None).
        return
    emails: dict[tuple[str, float], list[str]] = {}
    for note in obs.budget_notifications:
        subs = call(
            budgets.describe_subscribers_for_notification,
            AccountId=account, BudgetName=names.budget, Notification=note,
        )  # fmt: skip
        emails[(str(note["NotificationType"]), float(note["Threshold"]))] = sorted(
            str(s["Address"])
            for s in subs.get("Subscribers", [])
            if s.get("SubscriptionType") == "EMAIL"
        )
    obs.budget_emails = emails


def read_registry(
    aws: Aws, table: str, bucket: str, seeds: tuple[Any, ...], aliases_version: str
) -> ObservedRegistry:
    """The registry table and bucket, and which seeds (deploy/models.SeedModel) are in."""
    obs = ObservedRegistry()
    ddb, s3 = aws.client("dynamodb"), aws.client("s3")
    owner = aws.account_id
    try:
        call(ddb.describe_table, TableName=table)
        obs.table_exists = True
    except Exception as exc:
        if not _missing(exc):
            raise
    obs.bucket_exists = read_artifact_bucket(aws, bucket, owner)
    if obs.bucket_exists:
        got = call(s3.get_bucket_versioning, Bucket=bucket, ExpectedBucketOwner=owner)
        obs.versioning = got.get("Status") == "Enabled"
        try:
            block = call(s3.get_public_access_block, Bucket=bucket, ExpectedBucketOwner=owner)
            conf = block.get("PublicAccessBlockConfiguration", {})
            obs.public_access_blocked = all(conf.get(k) for k in _ALL_BLOCKED)
        except Exception as exc:
            if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
        try:
            enc = call(s3.get_bucket_encryption, Bucket=bucket, ExpectedBucketOwner=owner)
            rules = enc.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
            algos = {
                r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules
            }
            obs.encrypted = bool(algos & {"AES256", "aws:kms", "aws:kms:dsse"})
        except Exception as exc:
            if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
        wanted = {key for seed in seeds for _, _, _, key in seed.files}
        if wanted:
            # One listing per prefix instead of a HEAD per file (a deploy reads this often).
            for prefix in sorted({key.split("/", 1)[0] + "/" for key in wanted}):
                pages = s3.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=prefix, ExpectedBucketOwner=owner
                )
                for page in pages:
                    obs.objects.update(
                        o["Key"] for o in page.get("Contents", []) if o["Key"] in wanted
                    )
    if obs.table_exists and (seeds or aliases_version):
        # The registry is small: one consistent scan instead of a GetItem per seed.
        names = {seed.name for seed in seeds}
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for page in ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for raw in page.get("Items", []):
                name, version = _plain(raw.get("name", {})), _plain(raw.get("version", {}))
                endpoint = hosted_endpoint(_plain(raw.get("host", {})))
                if endpoint is not None:
                    obs.hosted_endpoints.add(endpoint)
                if name in names and isinstance(version, str):
                    items[(str(name), version)] = {k: _plain(v) for k, v in raw.items()}
        for seed in seeds:
            if (seed.name, seed.version) in items:
                obs.versions.add((seed.name, seed.version))
            aliases = items.get((seed.name, aliases_version))
            if aliases is None:
                continue
            obs.aliases[seed.name] = aliases
            live = aliases.get("live")
            if isinstance(live, str):
                source = str((items.get((seed.name, live)) or {}).get("source") or "")
                obs.live[seed.name] = (live, source)
    return obs


def _pick(items: list[dict[str, Any]], known: str | None) -> dict[str, Any]:
    """The one of several same-named resources scarab would keep: the state record's,
    else the oldest."""
    for item in items:
        if item["id"] == known:
            return item
    return sorted(items, key=lambda i: str(i.get("createdDate", "")))[0]


def find_duplicates(aws: Aws, names: Names, state: StageState) -> list[str]:
    """Advice for each resource the stage has more than one of (two REST APIs named
    <app>-<stage>, two usage plans, two keys of one name): what a concurrent run or a
    lost record leaves behind. Adopting one silently would leave the others live."""
    apigw = aws.client("apigateway")
    region = f" --region {aws.region}"
    problems: list[str] = []
    apis = [
        api
        for page in apigw.get_paginator("get_rest_apis").paginate()
        for api in page.get("items", [])
        if api.get("name") == names.rest_api
    ]
    if len(apis) > 1:
        keep = _pick(apis, state.rest_api_id)
        orphans = [a["id"] for a in apis if a["id"] != keep["id"]]
        problems.append(
            f"{len(apis)} REST APIs are named {names.rest_api}: {_listing(apis, keep)}."
            " Delete the orphan: "
            + "; ".join(
                f"aws apigateway delete-rest-api --rest-api-id {i}{region}" for i in orphans
            )
        )
    plans = [
        plan
        for page in apigw.get_paginator("get_usage_plans").paginate()
        for plan in page.get("items", [])
        if plan.get("name") == names.usage_plan
    ]
    if len(plans) > 1:
        attached = [
            p
            for p in plans
            if any(s.get("apiId") == state.rest_api_id for s in p.get("apiStages") or [])
        ]
        keep = _pick(plans, state.usage_plan_id or (attached[0]["id"] if attached else None))
        orphans = [p["id"] for p in plans if p["id"] != keep["id"]]
        problems.append(
            f"{len(plans)} usage plans are named {names.usage_plan}: {_listing(plans, keep)}."
            " Delete the orphan and its keys (API Gateway console, Usage plans; or"
            " aws apigateway delete-usage-plan --usage-plan-id ID after removing its API"
            " stages and keys): " + ", ".join(orphans)
        )
    by_name: dict[str, list[str]] = {}
    for page in apigw.get_paginator("get_api_keys").paginate(nameQuery=names.key_prefix):
        for key in page.get("items", []):
            if is_stage_key_name(names, str(key.get("name", ""))):
                by_name.setdefault(str(key["name"]), []).append(str(key["id"]))
    for key_name, ids in sorted(by_name.items()):
        if len(ids) > 1:
            problems.append(
                f"{len(ids)} API keys are named {key_name}: {', '.join(sorted(ids))}. Keep the"
                " one in the usage plan ('scarab keys list') and delete the others:"
                f" aws apigateway delete-api-key --api-key ID{region}"
            )
    return problems


def _listing(items: list[dict[str, Any]], keep: dict[str, Any]) -> str:
    def one(item: dict[str, Any]) -> str:
        created = item.get("createdDate")
        when = f" created {created}" if created else ""
        mark = " (scarab keeps this one)" if item["id"] == keep["id"] else ""
        return f"{item['id']}{when}{mark}"

    return ", ".join(one(i) for i in items)


def read_unit(aws: Aws, names: FunctionNames, url_on_alias: bool = False) -> ObservedUnit:
    """One function with its role and log group."""
    unit = ObservedUnit(
        role=read_role(aws, names), function=read_function(aws, names, url_on_alias)
    )
    unit.log_group_exists, unit.log_group_retention = read_log_group(aws, names)
    return unit


def log_group_tags(aws: Aws, group: str) -> dict[str, str]:
    try:
        got = call(aws.client("logs").list_tags_log_group, logGroupName=group)
    except Exception as exc:
        if _missing(exc):
            return {}
        raise
    return dict(got.get("tags") or {})


def read_legacy_unit(aws: Aws, names: Names) -> ObservedUnit | None:
    """The single function of a stage deployed before the split, with its role and log
    group, as far as they are this stage's (None: nothing of it is).

    Its names (`<app>-<stage>`, `<app>-<stage>-role`) are another stage's function names
    when that stage is called `<stage>-analyze` or `<stage>-models`, so only resources
    tagged for this stage count, never untagged ones; and a role stays with a function
    of that name that is not this stage's (it uses the role).
    """
    old = names.legacy
    unit = read_unit(aws, old)
    if unit.function is not None and not names.tagged_by(unit.function.tags):
        return None
    if unit.role is not None and not names.tagged_by(unit.role.tags):
        unit.role = None
    if unit.log_group_exists and not names.tagged_by(log_group_tags(aws, old.log_group)):
        unit.log_group_exists, unit.log_group_retention = False, None
    if unit.function is None and unit.role is None and not unit.log_group_exists:
        return None
    return unit


def read_all(
    aws: Aws,
    names: Names,
    state: StageState,
    functions: tuple[FunctionNames, ...],
    retired: tuple[FunctionNames, ...] = (),
    image_tag: str | None = None,
    include_ecr: bool = False,
    artifact_bucket: tuple[str, str] | None = None,
    registry: tuple[str, str, tuple[Any, ...], str] | None = None,
    snapstart: tuple[str, ...] = (),
) -> Observed:
    """Everything the planner needs, read with read-only calls. `snapstart`: the keys of
    the functions that want SnapStart (their provisioned concurrency is read too).

    Duplicates of a resource the stage owns are refused (see find_duplicates)."""
    problems = find_duplicates(aws, names, state)
    if problems:
        raise ScarabError(
            f"Stage {names.stage} has duplicate resources, so scarab will not pick one:\n  "
            + "\n  ".join(problems)
            + "\nThen re-run 'scarab deploy'. ('scarab destroy' removes all of them.)"
        )
    obs = Observed()
    obs.units = {
        fn.key: read_unit(aws, fn, state.functions.get(fn.key, {}).get("url_on") == LIVE_ALIAS)
        for fn in functions
    }
    for fn in functions:
        live = obs.units[fn.key].function
        if fn.key in snapstart and live is not None:
            live.provisioned = read_provisioned_concurrency(aws, fn.function)
    for old in retired:
        legacy = read_legacy_unit(aws, names) if old == names.legacy else read_unit(aws, old)
        if legacy is None or (legacy.function is None and legacy.role is None):
            continue
        if legacy.role is not None:
            legacy.role_users = role_users(aws, old.function, legacy.role.arn)
        obs.retired[old.function] = legacy
    obs.api = read_api(aws, names, state.rest_api_id)
    obs.plan, obs.keys = read_plan_and_keys(aws, names, state.usage_plan_id)
    if include_ecr:
        obs.ecr_repository_uri, obs.ecr_has_tag = read_ecr(aws, names, image_tag)
    if artifact_bucket is not None:  # (bucket, expected owner): only for a zip over 50 MB
        obs.artifact_bucket_exists = read_artifact_bucket(aws, *artifact_bucket)
    if registry is not None:
        obs.registry = read_registry(aws, *registry)
    # Always: a table the config no longer wants is deleted.
    obs.cache = read_cache(aws, names.cache_table)
    obs.uploads = read_uploads(aws, names.uploads_bucket(aws.account_id, aws.region))
    jobs_fn = next((fn for fn in functions if fn.key in (JOBS_FUNCTION, "all")), None)
    obs.jobs = read_jobs(aws, names, jobs_fn)
    # Always too: alarms, topic and budget the config no longer wants are deleted.
    obs.alarms = read_alarms(aws, names, alarm_topic_arn(aws, names))
    return obs


# The catalog function that runs the jobs (scarab.deploy.routes: it serves POST /jobs).
JOBS_FUNCTION = "analyze"


def _error_free(exc: Exception, *codes: str) -> bool:
    return error_code(exc) in codes


def read_uploads(aws: Aws, bucket: str) -> ObservedUploads:
    """The uploads bucket and its settings. The check names the expected owner: a bucket
    of that name in another account is refused, never configured or filled."""
    obs = ObservedUploads()
    owner = aws.account_id
    s3 = aws.client("s3")
    try:
        call(s3.head_bucket, Bucket=bucket, ExpectedBucketOwner=owner)
    except Exception as exc:
        code = error_code(exc)
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return obs
        if code in {"403", "AccessDenied", "Forbidden"}:
            raise ScarabError(
                f"The uploads bucket {bucket} exists but is not this account's ({owner}), or"
                " this identity may not read it; scarab will not send uploads there."
            ) from None
        raise
    obs.bucket_exists = True
    own: dict[str, Any] = {"Bucket": bucket, "ExpectedBucketOwner": owner}
    try:
        obs.tags = _tags({"Tags": call(s3.get_bucket_tagging, **own).get("TagSet")})
    except Exception as exc:
        if not _error_free(exc, "NoSuchTagSet", "NoSuchTagSetError"):
            raise
    try:
        conf = call(s3.get_public_access_block, **own).get("PublicAccessBlockConfiguration", {})
        obs.public_access_blocked = all(conf.get(k) for k in _ALL_BLOCKED)
    except Exception as exc:
        if not _error_free(exc, "NoSuchPublicAccessBlockConfiguration"):
            raise
    try:
        enc = call(s3.get_bucket_encryption, **own)
        rules = enc.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        algos = {r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules}
        obs.encrypted = bool(algos & {"AES256", "aws:kms", "aws:kms:dsse"})
    except Exception as exc:
        if not _error_free(exc, "ServerSideEncryptionConfigurationNotFoundError"):
            raise
    try:
        rules = call(s3.get_bucket_ownership_controls, **own)["OwnershipControls"]["Rules"]
        obs.owner_enforced = [r.get("ObjectOwnership") for r in rules] == ["BucketOwnerEnforced"]
    except Exception as exc:
        if not _error_free(exc, "OwnershipControlsNotFoundError"):
            raise
    try:
        obs.lifecycle = list(call(s3.get_bucket_lifecycle_configuration, **own).get("Rules", []))
    except Exception as exc:
        if not _error_free(exc, "NoSuchLifecycleConfiguration"):
            raise
    try:
        obs.cors = list(call(s3.get_bucket_cors, **own).get("CORSRules", []))
    except Exception as exc:
        if not _error_free(exc, "NoSuchCORSConfiguration"):
            raise
    return obs


_QUEUE_GONE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def read_jobs(aws: Aws, names: Names, function: FunctionNames | None) -> ObservedJobs:
    """The jobs table (and its TTL), the dead-letter queue (its attributes, tags and the
    mappings reading it) and `function`'s EventInvokeConfig on its `live` alias."""
    obs = ObservedJobs()
    table = read_cache(aws, names.jobs_table)  # the same reads: DescribeTable, TTL, tags
    obs.table_exists, obs.ttl_enabled = table.table_exists, table.ttl_enabled
    obs.ttl_attribute, obs.table_tags = table.ttl_attribute, table.tags
    sqs = aws.client("sqs")
    try:
        url = str(
            call(
                sqs.get_queue_url, QueueName=names.jobs_dlq, QueueOwnerAWSAccountId=aws.account_id
            )["QueueUrl"]
        )
    except Exception as exc:
        if error_code(exc) not in _QUEUE_GONE:
            raise
        url = None
    if url is not None:
        obs.queue_url = url
        got = call(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["All"])
        obs.queue_attributes = dict(got.get("Attributes") or {})
        obs.queue_tags = dict(call(sqs.list_queue_tags, QueueUrl=url).get("Tags") or {})
        queue_arn = obs.queue_attributes.get("QueueArn") or (
            f"arn:{aws.partition}:sqs:{aws.region}:{aws.account_id}:{names.jobs_dlq}"
        )
        lam = aws.client("lambda")
        pages = lam.get_paginator("list_event_source_mappings").paginate(EventSourceArn=queue_arn)
        obs.mappings = [
            _mapping(aws, dict(m)) for page in pages for m in page.get("EventSourceMappings", [])
        ]
    if function is not None:
        try:
            got = call(
                aws.client("lambda").get_function_event_invoke_config,
                FunctionName=function.function, Qualifier=LIVE_ALIAS,
            )  # fmt: skip
            obs.invoke_config = {
                k: got.get(k)
                for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "FunctionArn")
            }
        except Exception as exc:
            if not _missing(exc):
                raise
    return obs


def _mapping(aws: Aws, mapping: dict[str, Any]) -> dict[str, Any]:
    """A mapping as the planner compares it. moto resolves an alias to the version it
    named when the mapping was made (`...:function:f:3`); AWS answers the alias ARN. On
    an emulator a version qualifier is read as the `live` alias the deploy gave it."""
    arn = str(mapping.get("FunctionArn") or "")
    base, _, qualifier = arn.rpartition(":")
    if aws.local and qualifier.isdigit() and ":function:" in base:
        mapping["FunctionArn"] = f"{base}:{LIVE_ALIAS}"
    return mapping


def alarm_topic_arn(aws: Aws, names: Names) -> str:
    """The ARN of the stage's alarm topic in this account and region."""
    return f"arn:{aws.partition}:sns:{aws.region}:{aws.account_id}:{names.alarm_topic}"


# What `scarab destroy` removes -------------------------------------------------------

# Errors from a region this account has not enabled (opt-in regions): nothing lives there.
_REGION_DISABLED = {"UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure"}


@dataclass
class Doomed:
    """Everything of a stage that `scarab destroy` would delete, as the account has it.

    Every same-named copy is listed (a concurrent deploy's duplicate goes too).
    """

    usage_plans: list[dict[str, Any]] = field(default_factory=list)
    keys: list[ObservedKey] = field(default_factory=list)
    primary_plan_id: str | None = None  # the plan whose key associations are listed
    rest_api_ids: list[str] = field(default_factory=list)
    # Every function of the stage found (today's and an older layout's), in the order
    # they are deleted, with its names.
    functions: list[tuple[FunctionNames, DoomedFunction]] = field(default_factory=list)
    ecr_repository: bool = False
    # The model registry (kept unless asked: pushed models are the user's data).
    registry_table: str | None = None
    models_bucket: str | None = None
    include_models: bool = False
    # The shared response cache's table (only copies of answers: always deleted).
    cache_table: str | None = None
    # The uploads bucket (emptied first), the jobs table, the dead-letter queue's URL and
    # the mappings reading it (UUIDs): uploads and jobs are transient, always deleted.
    uploads_bucket: str | None = None
    jobs_table: str | None = None
    jobs_queue_url: str | None = None
    jobs_mappings: list[tuple[str, str]] = field(default_factory=list)  # (UUID, target)
    owner: str = ""  # the account, for the bucket's ExpectedBucketOwner
    # The stage's alarms (tagged for it), their topic (tagged for it) and its budget
    # (filtering on the stage's tags).
    alarm_names: list[str] = field(default_factory=list)
    alarm_topic_arn: str | None = None
    budget: str | None = None
    # The budget's name when it stays: budgets are per account, and the stage's
    # functions in another region (role_users says which) are what it still watches.
    budget_kept: str | None = None


@dataclass
class DoomedFunction:
    """One function's resources that destroy would delete."""

    permission: bool = False
    # Its Function URL, and the public permission of one with auth NONE (scarab's).
    url: bool = False
    url_permission: bool = False
    # Its aliases (`live`: its permission for the API, its URL and that URL's permission).
    aliases: list[str] = field(default_factory=list)
    alias_permission: bool = False
    alias_url: bool = False
    alias_url_permission: bool = False
    # The `live` alias's EventInvokeConfig (the jobs' retries).
    invoke_config: bool = False
    function: bool = False
    log_group: bool = False
    role: ObservedRole | None = None
    # Why the role must stay (a function elsewhere uses it, a region could not be checked).
    role_users: list[str] = field(default_factory=list)


def _regions(aws: Aws) -> list[str]:
    """The regions to look for users of the role in: the account's enabled regions."""
    try:
        got = call(aws.client("ec2").describe_regions)["Regions"]
        return sorted(str(r["RegionName"]) for r in got)
    except Exception:
        # No ec2:DescribeRegions: every region Lambda has in this partition.
        return sorted(aws.session.get_available_regions("lambda", aws.partition))


def role_users(aws: Aws, function: str, role_arn: str) -> list[str]:
    """Why the role must stay: a function named `function` that uses it in another region
    (this region's is deleted by the plan first), or a region that could not be checked."""
    users: list[str] = []
    for region in _regions(aws):
        if region == aws.region:
            continue
        lam = aws.client("lambda", region)
        try:
            got = call(lam.get_function_configuration, FunctionName=function)
        except Exception as exc:
            code = error_code(exc)
            if _missing(exc) or code in _REGION_DISABLED:
                continue
            users.append(f"could not check {region} for a function using it ({explain(exc)})")
            continue
        if got.get("Role") == role_arn:
            users.append(f"the function {function} in {region} still uses it")
    return users


def read_doomed(
    aws: Aws,
    names: Names,
    state: StageState,
    include_images: bool,
    functions: tuple[FunctionNames, ...],
    include_models: bool = False,
) -> Doomed:
    """What destroy would delete, read with read-only calls."""
    apigw = aws.client("apigateway")
    doomed = Doomed()
    primary = find_usage_plan(aws, names, state.usage_plan_id)
    doomed.primary_plan_id = primary["id"] if primary else None
    plans = [
        plan
        for page in apigw.get_paginator("get_usage_plans").paginate()
        for plan in page.get("items", [])
        if plan.get("name") == names.usage_plan
    ]
    doomed.usage_plans = sorted(plans, key=lambda p: p["id"] != doomed.primary_plan_id)
    _, doomed.keys = read_plan_and_keys(aws, names, doomed.primary_plan_id)
    known = find_rest_api(aws, names, state.rest_api_id)
    ids = [
        str(api["id"])
        for page in apigw.get_paginator("get_rest_apis").paginate()
        for api in page.get("items", [])
        if api.get("name") == names.rest_api
    ]
    doomed.rest_api_ids = sorted(ids, key=lambda i: i != known)
    for fn_names in functions:
        if fn_names == names.legacy:
            unit = read_legacy_unit(aws, names)
            if unit is None:
                continue
        else:
            on_alias = state.functions.get(fn_names.key, {}).get("url_on") == LIVE_ALIAS
            unit = read_unit(aws, fn_names, on_alias)
            if unit.function is not None and not names.tagged_by(unit.function.tags, True):
                continue  # another stage's function of the same name: not ours to delete
        one = DoomedFunction(role=unit.role, log_group=unit.log_group_exists)
        if unit.function is not None:
            one.function = True
            one.permission = any(s.get("Sid") == names.permission_sid for s in unit.function.policy)
            one.url = unit.function.url is not None
            one.url_permission = any(
                s.get("Sid") == URL_PERMISSION_SID for s in unit.function.policy
            )
            live = unit.function
            one.aliases = sorted(live.aliases)
            one.alias_permission = any(
                s.get("Sid") == names.alias_permission_sid for s in live.alias_policy
            )
            one.alias_url = live.alias_url is not None
            one.alias_url_permission = any(
                s.get("Sid") == URL_PERMISSION_SID for s in live.alias_policy
            )
        if one.role is not None:
            one.role_users = role_users(aws, fn_names.function, one.role.arn)
        if one.function or one.log_group or one.role is not None:
            doomed.functions.append((fn_names, one))
    if include_images:
        doomed.ecr_repository = read_ecr(aws, names, None)[0] is not None
    registry = read_registry(
        aws, names.registry_table, names.models_bucket(aws.account_id, aws.region), (), ""
    )
    if registry.table_exists:
        doomed.registry_table = names.registry_table
    if registry.bucket_exists:
        doomed.models_bucket = names.models_bucket(aws.account_id, aws.region)
    doomed.include_models = include_models
    cache = read_cache(aws, names.cache_table)
    if cache.table_exists and names.tagged_by(cache.tags):
        doomed.cache_table = names.cache_table
    uploads = read_uploads(aws, names.uploads_bucket(aws.account_id, aws.region))
    if uploads.bucket_exists and names.tagged_by(uploads.tags):
        doomed.uploads_bucket = names.uploads_bucket(aws.account_id, aws.region)
    jobs_fn = names.function(JOBS_FUNCTION)
    jobs = read_jobs(aws, names, jobs_fn)
    if jobs.table_exists and names.tagged_by(jobs.table_tags):
        doomed.jobs_table = names.jobs_table
    if jobs.queue_url is not None and names.tagged_by(jobs.queue_tags):
        doomed.jobs_queue_url = jobs.queue_url
        doomed.jobs_mappings = sorted(
            (str(m["UUID"]), str(m.get("FunctionArn") or "").rpartition(":function:")[2])
            for m in jobs.mappings
        )
    for fn_names, one in doomed.functions:
        if fn_names == jobs_fn and one.function and jobs.invoke_config is not None:
            one.invoke_config = True
    doomed.owner = aws.account_id
    watch = read_alarms(aws, names, alarm_topic_arn(aws, names))
    doomed.alarm_names = sorted(n for n, tags in watch.alarm_tags.items() if names.tagged_by(tags))
    if watch.topic_exists and names.tagged_by(watch.topic_tags):
        doomed.alarm_topic_arn = watch.topic_arn
    if watch.budget is not None and watch.budget.get("FilterExpression") == stage_budget_filter(
        names
    ):
        elsewhere = any(one.role_users for _, one in doomed.functions)
        if elsewhere:
            doomed.budget_kept = names.budget
        else:
            doomed.budget = names.budget
    return doomed


def stage_budget_filter(names: Names) -> dict[str, Any]:
    """The cost filter of the stage's budget (deploy/alarms.BudgetSpec's): what makes a
    budget of the stage's name scarab's."""
    from scarab.deploy.alarms import tag_filter

    return tag_filter(names.tags)
