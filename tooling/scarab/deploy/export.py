"""`scarab export`: the stage as a CloudFormation or SAM template.

The template is rendered from the same `Desired` the planner compares against AWS
(`models.desired_state`), computed with CloudFormation pseudo-parameters in place of the
account, region and partition. Every string that then holds one becomes an `Fn::Sub`, so
the template is portable and rendering needs no AWS call and no credentials.

What the template cannot carry: secret values (the function gets the parameter or secret
*name* and reads the value at run time), the code (the zip is a template parameter the user
uploads), API key values (CloudFormation generates the key) and the ids of an existing
deploy (nothing is imported).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Literal

from scarab import __version__
from scarab.artifacts.image import image_tag
from scarab.config import ScarabConfig
from scarab.deploy import routes as routes_mod
from scarab.deploy.models import (
    JOBS_BATCH_SIZE,
    JOBS_RESPONSE_TYPES,
    PREFLIGHT_REQUEST_TEMPLATES,
    URL_INVOKE_ACTION,
    Code,
    Desired,
    FunctionSpec,
    MethodSpec,
    desired_state,
)
from scarab.deploy.planner_cache import TABLE_KEY as CACHE_TABLE_KEY
from scarab.deploy.planner_cache import ttl_specification
from scarab.deploy.planner_jobs import TABLE_KEY as JOBS_TABLE_KEY
from scarab.deploy.planner_registry import PUBLIC_ACCESS_BLOCK, TABLE_KEY
from scarab.deploy.planner_versions import DESCRIPTION_MARK, config_digest, version_configuration
from scarab.deploy.release_models import LIVE_ALIAS
from scarab.errors import ConfigError, ScarabError
from scarab.functions import FUNCTIONS

Format = Literal["cloudformation", "sam"]
FORMATS: tuple[Format, ...] = ("cloudformation", "sam")
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"

# Rendered into the desired state where deploy has the caller's account, region and
# partition; `Fn::Sub` resolves them when the stack is created.
ACCOUNT = "${AWS::AccountId}"
REGION = "${AWS::Region}"
PARTITION = "${AWS::Partition}"
URL_SUFFIX = "${AWS::URLSuffix}"

# Logical ids of the resources other resources refer to. Each function's own resources
# are prefixed with its name: AnalyzeRole, AnalyzeLogGroup, AnalyzeFunction, ...
ROLE, LOG_GROUP, FUNCTION, PERMISSION = "Role", "LogGroup", "Function", "Permission"
API, STAGE, USAGE_PLAN, API_KEY, USAGE_PLAN_KEY = (
    "Api",
    "Stage",
    "UsagePlan",
    "ApiKey",
    "UsagePlanKey",
)
REPOSITORY = "Repository"
# The `live` alias of a function: SAM's AutoPublishAlias names it <Function>Alias<name>,
# and the CloudFormation template uses the same id (AnalyzeFunctionAliaslive), so the
# API, the permissions and the URL refer to it the same way in both.
ALIAS = f"Alias{LIVE_ALIAS}"
REGISTRY_TABLE, MODELS_BUCKET = "RegistryTable", "ModelsBucket"
CACHE_TABLE = "CacheTable"
UPLOADS_BUCKET, JOBS_TABLE, JOBS_QUEUE = "UploadsBucket", "JobsTable", "JobsQueue"
ALARM_TOPIC, ALARM_SUBSCRIPTION, BUDGET = "AlarmTopic", "AlarmSubscription", "Budget"
# In --code-uri's key: replaced by each function's name.
FUNCTION_PLACEHOLDER = "{function}"


def logical_id(*parts: str) -> str:
    """An alphanumeric CloudFormation id: ('/predict/{model_id}', 'POST') -> PredictModelIdPost."""
    words = re.split(r"[^A-Za-z0-9]+", " ".join(parts))
    return "".join(w[:1].upper() + w[1:].lower() for w in words if w)


def own_id(fn: FunctionSpec | str, what: str) -> str:
    """The logical id of function `fn`'s resource `what`: ('analyze', 'Role') -> AnalyzeRole."""
    key = fn if isinstance(fn, str) else fn.key
    return logical_id(key) + what


IMAGE_TAG = "ImageTag"
# What `_sub` resolves: the pseudo-parameters and the references this module writes.
_TOKENS = (
    ACCOUNT, REGION, PARTITION, URL_SUFFIX, f"${{{API}}}", f"${{{IMAGE_TAG}}}",
    *(f"${{{own_id(f.name, FUNCTION)}.Arn}}" for f in FUNCTIONS),
    *(f"${{{own_id(f.name, FUNCTION + ALIAS)}}}" for f in FUNCTIONS),
)  # fmt: skip
_OTHER_SUB = re.compile(r"\$\{(?!(?:" + "|".join(re.escape(t[2:]) for t in _TOKENS) + "))")
# A MOCK integration answers with the status code its request template names.


def parse_code_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key), or a ConfigError saying what is wrong.

    The key names every function's zip with `{function}` (analyze, models) in it:
    `s3://my-bucket/scarab-dev-{function}.zip`.
    """
    match = re.fullmatch(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)", uri)
    if match is None:
        raise ConfigError(
            f"--code-uri {uri!r} is not an S3 URI: use s3://BUCKET/KEY, the zips you uploaded"
            " (build them with 'scarab build'), with {function} in KEY where each"
            " function's name goes (s3://my-bucket/scarab-dev-{function}.zip)."
        )
    key = match.group(2)
    if FUNCTION_PLACEHOLDER not in key:
        names = " and ".join(f.name for f in FUNCTIONS)
        raise ConfigError(
            f"--code-uri {uri!r} names one zip, and the stage has one per function ({names}):"
            " put {function} in the key where each function's name goes, e.g."
            f" s3://{match.group(1)}/scarab-dev-{{function}}.zip."
        )
    return match.group(1), key


def export_desired(config: ScarabConfig, project_dir: Path) -> Desired:
    """The stage's desired state with pseudo-parameters for account, region, partition."""
    fn = config.function
    if fn.package == "image":
        from scarab.naming import Names

        repo = f"{ACCOUNT}.dkr.ecr.{REGION}.{URL_SUFFIX}/"
        repo += Names(config.app, config.stage).ecr_repository
        code = Code(
            package="image",
            image_tag=image_tag(project_dir, fn.architecture),
            image_repository=repo,
        )
    else:
        code = Code(package="zip")
    # The log as deploy turns it on when its secret is stored: export asks no store, and
    # the functions read the URL at run time (without it they log nothing), as they read
    # the Gemini key.
    return desired_state(
        config,
        account_id=ACCOUNT,
        region=REGION,
        partition=PARTITION,
        codes={f.name: code for f in FUNCTIONS},
        log=config.log.enabled,
    )


def render(
    config: ScarabConfig,
    *,
    project_dir: Path,
    fmt: Format,
    code_uri: str | None = None,
) -> dict[str, Any]:
    """The template (a JSON-ready dict) of everything `deploy` creates for the stage."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: use cloudformation or sam.")
    bucket, key = parse_code_uri(code_uri) if code_uri else (None, None)
    d = export_desired(config, project_dir)
    return _Template(d, fmt, bucket, key).render()


def to_json(template: dict[str, Any]) -> str:
    """The template as JSON text. Characters stay as they are (write it as UTF-8): an
    escaped non-BMP character is a surrogate pair, which YAML readers such as cfn-lint's
    and CloudFormation's refuse or turn into two broken characters."""
    return json.dumps(template, indent=2, ensure_ascii=False) + "\n"


def write(template: dict[str, Any], output: Path | None) -> None:
    """Write the template to `output`, or to stdout, as UTF-8 whatever the locale."""
    data = to_json(template).encode("utf-8")
    if output is not None:
        output.write_bytes(data)
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _sub(value: Any) -> Any:
    """Strings holding a pseudo-parameter or a reference become Fn::Sub, deeply.

    Any other `${` in such a string is escaped (`${!`), so Sub leaves it as written.
    """
    if isinstance(value, str):
        if not any(token in value for token in _TOKENS):
            return value
        return {"Fn::Sub": _OTHER_SUB.sub("${!", value)}
    if isinstance(value, dict):
        return {k: _sub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sub(v) for v in value]
    return value


def _literal(value: Any) -> Any:
    """Every plain string holding `${` becomes an Fn::Sub with each `${` escaped as `${!`,
    deeply (intrinsic functions, already written by `_sub`, are left alone).

    CloudFormation leaves a plain string as it is, but cfn-lint takes `${AWS::Region}` in
    one for a forgotten Sub (E1029); the escaped Sub means the same text to both. So a
    user's `[function.environment] X = "${AWS::Region}"` reaches the function as written.
    """
    if isinstance(value, str):
        return {"Fn::Sub": value.replace("${", "${!")} if "${" in value else value
    if isinstance(value, dict):
        if len(value) == 1 and _is_intrinsic(next(iter(value))):
            return value
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_literal(v) for v in value]
    return value


def _is_intrinsic(key: str) -> bool:
    return key == "Ref" or key.startswith("Fn::")


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


class _Template:
    def __init__(self, d: Desired, fmt: Format, bucket: str | None, key: str | None) -> None:
        self.d, self.fmt, self.bucket, self.key = d, fmt, bucket, key
        self.resources: dict[str, Any] = {}
        self.parameters: dict[str, Any] = {}

    def render(self) -> dict[str, Any]:
        d = self.d
        template: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09"}
        if self.fmt == "sam":
            template["Transform"] = SAM_TRANSFORM
        template["Description"] = (
            f"Scarab stage {d.names.stage} of app {d.names.app}, exported by 'scarab export'"
            " from the models 'scarab deploy' uses. Named IAM resources: create the stack"
            " with CAPABILITY_NAMED_IAM."
        )
        self._repository()
        self._registry()
        self._cache()
        self._uploads()
        self._jobs()
        self._code_parameters()
        for fn in d.functions:
            self._role(fn)
            self._logs(fn)
            self._function(fn)
        self._api()
        for fn in d.functions:
            self._permission(fn)
            self._url(fn)
        self._jobs_invoke()
        self._usage_plan()
        self._alarms()
        self._budget()
        template["Parameters"] = self.parameters
        template["Resources"] = self.resources
        template["Outputs"] = self._outputs()
        return template

    def add(self, logical: str, kind: str, props: dict[str, Any], **extra: Any) -> None:
        if logical in self.resources:
            raise ScarabError(f"Two exported resources share the logical id {logical}.")
        self.resources[logical] = {"Type": kind, "Properties": _literal(props), **extra}

    # IAM, logs, ECR ------------------------------------------------------------------

    def _role(self, fn: FunctionSpec) -> None:
        d = self.d
        props: dict[str, Any] = {
            "RoleName": fn.role_name,
            "AssumeRolePolicyDocument": d.role_trust,
            "Tags": _tag_list(d.tags),
        }
        if d.managed_policy_arns:
            props["ManagedPolicyArns"] = _sub(list(d.managed_policy_arns))
        role = own_id(fn, ROLE)
        self.add(role, "AWS::IAM::Role", props)
        # One resource per inline policy, as deploy puts each with PutRolePolicy.
        for name, doc in fn.inline_policies.items():
            self.add(
                self._policy_id(fn, name),
                "AWS::IAM::RolePolicy",
                {"RoleName": {"Ref": role}, "PolicyName": name, "PolicyDocument": _sub(doc)},
            )

    def _logs(self, fn: FunctionSpec) -> None:
        self.add(
            own_id(fn, LOG_GROUP),
            "AWS::Logs::LogGroup",
            {
                "LogGroupName": fn.log_group,
                "RetentionInDays": fn.log_retention_days,
                "Tags": _tag_list(self.d.tags),
            },
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )

    def _environment(self, fn: FunctionSpec) -> dict[str, Any]:
        """The function's variables: the user's as written (literal), scarab's registry
        names with the account and region substituted by CloudFormation."""
        derived = dict(self.d.registry.environment) if self.d.registry else {}
        if self.d.uploads is not None:
            derived.update(self.d.uploads.environment)
        return {k: _sub(v) if derived.get(k) == v else v for k, v in fn.environment.items()}

    def _registry(self) -> None:
        """The model registry's table and bucket, kept when the stack is deleted (pushed
        models are data). The packaged models are not seeded by the template: the first
        `scarab deploy`, or `scarab models push`, fills the table."""
        r = self.d.registry
        if r is None:
            return
        keep = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
        self.add(
            REGISTRY_TABLE,
            "AWS::DynamoDB::Table",
            {
                "TableName": r.table,
                "AttributeDefinitions": TABLE_KEY["AttributeDefinitions"],
                "KeySchema": TABLE_KEY["KeySchema"],
                "BillingMode": "PAY_PER_REQUEST",
                "Tags": _tag_list(r.tags),
            },
            **keep,
        )
        self.add(
            MODELS_BUCKET,
            "AWS::S3::Bucket",
            {
                "BucketName": _sub(r.bucket),
                "VersioningConfiguration": {"Status": "Enabled"},
                "PublicAccessBlockConfiguration": PUBLIC_ACCESS_BLOCK,
                # CloudFormation spells the rule differently from the S3 API.
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ],
                },
                "Tags": _tag_list(r.tags),
            },
            **keep,
        )

    def _cache(self) -> None:
        """The shared response cache's table, with DynamoDB's TTL on (copies only: it
        goes with the stack)."""
        c = self.d.cache
        if c is None:
            return
        self.add(
            CACHE_TABLE,
            "AWS::DynamoDB::Table",
            {
                "TableName": c.table,
                "AttributeDefinitions": CACHE_TABLE_KEY["AttributeDefinitions"],
                "KeySchema": CACHE_TABLE_KEY["KeySchema"],
                "BillingMode": "PAY_PER_REQUEST",
                "TimeToLiveSpecification": ttl_specification(c),
                "Tags": _tag_list(c.tags),
            },
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )

    def _uploads(self) -> None:
        """The uploads bucket with the settings deploy gives it (leftovers only: it goes
        with the stack, once emptied)."""
        u = self.d.uploads
        if u is None:
            return
        [rule] = u.lifecycle["Rules"]
        cors_rules = [
            {
                "AllowedHeaders": cors["AllowedHeaders"],
                "AllowedMethods": cors["AllowedMethods"],
                "AllowedOrigins": cors["AllowedOrigins"],
                "MaxAge": cors["MaxAgeSeconds"],
            }
            for cors in u.cors["CORSRules"]
        ]
        cors_config = {"CorsConfiguration": {"CorsRules": cors_rules}} if cors_rules else {}
        self.add(
            UPLOADS_BUCKET,
            "AWS::S3::Bucket",
            {
                "BucketName": _sub(u.bucket),
                "PublicAccessBlockConfiguration": PUBLIC_ACCESS_BLOCK,
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ],
                },
                # CloudFormation spells the rules differently from the S3 API.
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": rule["ID"],
                            "Prefix": rule["Filter"]["Prefix"],
                            "Status": rule["Status"],
                            "ExpirationInDays": rule["Expiration"]["Days"],
                            "AbortIncompleteMultipartUpload": rule[
                                "AbortIncompleteMultipartUpload"
                            ],
                        }
                    ]
                },
                **cors_config,
                "Tags": _tag_list(u.tags),
            },
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )

    def _jobs(self) -> None:
        """The jobs table (DynamoDB's TTL on) and the dead-letter queue."""
        j = self.d.jobs
        if j is None:
            return
        self.add(
            JOBS_TABLE,
            "AWS::DynamoDB::Table",
            {
                "TableName": j.table,
                "AttributeDefinitions": JOBS_TABLE_KEY["AttributeDefinitions"],
                "KeySchema": JOBS_TABLE_KEY["KeySchema"],
                "BillingMode": "PAY_PER_REQUEST",
                "TimeToLiveSpecification": ttl_specification(j),
                "Tags": _tag_list(j.tags),
            },
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
        attrs = j.queue_attributes
        self.add(
            JOBS_QUEUE,
            "AWS::SQS::Queue",
            {
                "QueueName": j.queue,
                "MessageRetentionPeriod": int(attrs["MessageRetentionPeriod"]),
                "VisibilityTimeout": int(attrs["VisibilityTimeout"]),
                "Tags": _tag_list(j.tags),
            },
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )

    def _jobs_invoke(self) -> None:
        """The job function's `live` alias: its retries, and the queue's mapping to it."""
        j = self.d.jobs
        if j is None:
            return
        fn = self.d.function(j.function_key)
        alias = own_id(fn, FUNCTION + ALIAS)
        self.add(
            own_id(fn, "EventInvokeConfig"),
            "AWS::Lambda::EventInvokeConfig",
            {"FunctionName": {"Ref": own_id(fn, FUNCTION)}, "Qualifier": LIVE_ALIAS,
             **j.invoke_config},
            DependsOn=[alias],
        )  # fmt: skip
        self.add(
            own_id(fn, "JobsMapping"),
            "AWS::Lambda::EventSourceMapping",
            {
                "EventSourceArn": {"Fn::GetAtt": [JOBS_QUEUE, "Arn"]},
                "FunctionName": {"Ref": alias},
                "BatchSize": JOBS_BATCH_SIZE,
                "FunctionResponseTypes": list(JOBS_RESPONSE_TYPES),
            },
        )

    def _repository(self) -> None:
        d = self.d
        if d.code.package != "image":
            return
        lifecycle = d.ecr_lifecycle_policy
        self.add(
            REPOSITORY,
            "AWS::ECR::Repository",
            {
                "RepositoryName": d.names.ecr_repository,
                "ImageScanningConfiguration": {"ScanOnPush": True},
                "ImageTagMutability": "MUTABLE",
                "LifecyclePolicy": {"LifecyclePolicyText": json.dumps(lifecycle)},
                "Tags": _tag_list(d.tags),
            },
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
        )

    # Lambda ----------------------------------------------------------------------------

    def _code_parameters(self) -> None:
        code = self.d.code
        if code.package == "image":
            self.parameters[IMAGE_TAG] = {
                "Type": "String",
                "Default": str(code.image_tag),
                "Description": (
                    "Tag of the function's image in the stack's ECR repository (push it first;"
                    " the default is the tag 'scarab deploy' would push for this source)."
                ),
            }
            return
        keys = [
            (
                own_id(fn, "CodeKey"),
                self.key.replace(FUNCTION_PLACEHOLDER, fn.key) if self.key else None,
                f"S3 key of the {fn.key} function's zip ('scarab build' makes it)",
            )
            for fn in self.d.functions
        ]
        for name, default, what in (
            ("CodeBucket", self.bucket, "S3 bucket holding the functions' zips"),
            *keys,
        ):
            param: dict[str, Any] = {"Type": "String", "Description": what, "MinLength": 1}
            if default is not None:
                param["Default"] = default
            self.parameters[name] = param

    def _function(self, fn: FunctionSpec) -> None:
        props: dict[str, Any] = {
            "FunctionName": fn.name,
            "Description": fn.description,
            "Role": {"Fn::GetAtt": [own_id(fn, ROLE), "Arn"]},
            "MemorySize": fn.memory,
            "Timeout": fn.timeout,
            "Architectures": [fn.architecture],
            "Environment": {"Variables": self._environment(fn)},
        }
        if fn.vpc is not None:  # its network-interface policy is in DependsOn below
            props["VpcConfig"] = fn.vpc.as_params()
        if fn.snapstart:  # SnapStart snapshots published versions (zip only: see config)
            props["SnapStart"] = {"ApplyOn": "PublishedVersions"}
        dead_letter = {"Fn::GetAtt": [JOBS_QUEUE, "Arn"]}
        if fn.dead_letter_arn is not None and self.fmt == "sam":
            props["DeadLetterQueue"] = {"Type": "SQS", "TargetArn": dead_letter}
        elif fn.dead_letter_arn is not None:
            props["DeadLetterConfig"] = {"TargetArn": dead_letter}
        image = fn.code.package == "image"
        image_uri = _sub(f"{fn.code.image_repository}:${{{IMAGE_TAG}}}")
        s3 = {"Bucket": {"Ref": "CodeBucket"}, "Key": {"Ref": own_id(fn, "CodeKey")}}
        if self.fmt == "sam":
            kind = "AWS::Serverless::Function"
            props["Tags"] = dict(fn.tags)  # SAM takes a map and adds its own tag
            if image:
                props.update(
                    PackageType="Image",
                    ImageUri=image_uri,
                    ImageConfig={"Command": [fn.handler]},
                )
            else:
                props.update(Runtime=fn.runtime, Handler=fn.handler, CodeUri=s3)
        else:
            kind = "AWS::Lambda::Function"
            props["Tags"] = _tag_list(fn.tags)
            if image:
                props.update(
                    PackageType="Image",
                    Code={"ImageUri": image_uri},
                    ImageConfig={"Command": [fn.handler]},
                )
            else:
                code = {"S3Bucket": s3["Bucket"], "S3Key": s3["Key"]}
                props.update(Runtime=fn.runtime, Handler=fn.handler, Code=code)  # Zip: default
        # The log group first, as deploy does: Lambda would otherwise create it on the first
        # invocation, with no retention, and the stack's own group would then collide.
        depends = [own_id(fn, LOG_GROUP), *(self._policy_id(fn, n) for n in fn.inline_policies)]
        if image:
            depends.append(REPOSITORY)
        digest = config_digest(version_configuration(fn, fn.environment))
        if self.fmt == "sam":
            # SAM publishes a version when the code or this digest changes, so a change of
            # configuration alone publishes one too (AutoPublishAlias alone would not).
            props.update(
                AutoPublishAlias=LIVE_ALIAS,
                AutoPublishCodeSha256=digest,
                VersionDescription=f"{DESCRIPTION_MARK} config={digest} scarab={__version__}",
            )
        self.add(own_id(fn, FUNCTION), kind, props, DependsOn=depends)
        if self.fmt == "cloudformation":
            self._version(fn, digest)

    def _version(self, fn: FunctionSpec, digest: str) -> None:
        """A version and the `live` alias on it. The description names the code (the zip's
        key, the image's tag) and the configuration's digest: a change of either is a new
        description, which CloudFormation can only apply by publishing a new version.
        Replaced versions are retained, so a rollback has something to go back to."""
        source = (
            f"${{{IMAGE_TAG}}}" if fn.code.package == "image" else f"${{{own_id(fn, 'CodeKey')}}}"
        )
        version = own_id(fn, "Version")
        self.add(
            version,
            "AWS::Lambda::Version",
            {
                "FunctionName": {"Ref": own_id(fn, FUNCTION)},
                "Description": {
                    "Fn::Sub": f"{DESCRIPTION_MARK} source={source} config={digest}"
                    f" scarab={__version__}"
                },
            },
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
        )
        self.add(
            own_id(fn, FUNCTION + ALIAS),
            "AWS::Lambda::Alias",
            {
                "FunctionName": {"Ref": own_id(fn, FUNCTION)},
                "FunctionVersion": {"Fn::GetAtt": [version, "Version"]},
                "Name": LIVE_ALIAS,
            },
        )

    @staticmethod
    def _policy_id(fn: FunctionSpec, policy: str) -> str:
        return own_id(fn, logical_id("Role", "policy", policy))

    def _permission(self, fn: FunctionSpec) -> None:
        d = self.d
        self.add(
            own_id(fn, PERMISSION),
            "AWS::Lambda::Permission",
            {
                # The alias's ARN: the API invokes `live`, never $LATEST.
                "FunctionName": {"Ref": own_id(fn, FUNCTION + ALIAS)},
                "Action": "lambda:InvokeFunction",
                "Principal": "apigateway.amazonaws.com",
                # The model's own scope (this API's stage, any method, any path).
                "SourceArn": _sub(d.source_arn(f"${{{API}}}")),
            },
        )

    def _url(self, fn: FunctionSpec) -> None:
        """The function's Function URL, and for auth NONE the public permission Lambda
        requires (the statement deploy adds as URL_PERMISSION_SID)."""
        url = fn.url
        if url is None:
            return
        props: dict[str, Any] = {
            "TargetFunctionArn": {"Fn::GetAtt": [own_id(fn, FUNCTION), "Arn"]},
            "Qualifier": LIVE_ALIAS,
            "AuthType": url.auth,
        }
        if url.has_cors:
            # Empty lists left out: CloudFormation's defaults are the same.
            props["Cors"] = {k: v for k, v in url.cors.items() if v or k == "MaxAge"}
        alias = own_id(fn, FUNCTION + ALIAS)
        self.add(own_id(fn, "Url"), "AWS::Lambda::Url", props, DependsOn=[alias])
        if url.public:
            self.add(
                own_id(fn, "UrlPermission"),
                "AWS::Lambda::Permission",
                {
                    "FunctionName": {"Ref": alias},
                    "Action": URL_INVOKE_ACTION,
                    "Principal": "*",
                    "FunctionUrlAuthType": "NONE",
                },
            )

    # API Gateway -----------------------------------------------------------------------

    def _integration_uri(self, spec: MethodSpec) -> Any:
        # The model's URI, with the alias's ARN as a reference so the stack orders them.
        fn = next(f for f in self.d.functions if f.arn == spec.function_arn)
        alias = f"${{{own_id(fn, FUNCTION + ALIAS)}}}"
        return _sub(spec.integration_uri.replace(fn.alias_arn, alias))

    def _api(self) -> None:
        d, api = self.d, self.d.api
        self.add(
            API,
            "AWS::ApiGateway::RestApi",
            {
                "Name": api.name,
                "Description": f"Scarab API, stage {d.names.stage} (exported by scarab)",
                "EndpointConfiguration": {"Types": ["REGIONAL"]},
                "ApiKeySourceType": "HEADER",
                "BinaryMediaTypes": list(api.binary_media_types),
                "Tags": _tag_list(api.tags),
            },
        )
        resource_ids: dict[str, Any] = {"/": {"Fn::GetAtt": [API, "RootResourceId"]}}
        for path in api.resource_paths:
            logical = logical_id("Resource", path)
            parent = path.rsplit("/", 1)[0] or "/"
            self.add(
                logical,
                "AWS::ApiGateway::Resource",
                {
                    "RestApiId": {"Ref": API},
                    "ParentId": resource_ids[parent],
                    "PathPart": path.rsplit("/", 1)[1],
                },
            )
            resource_ids[path] = {"Ref": logical}
        methods = [self._method(spec, resource_ids[spec.path]) for spec in api.methods]
        for rtype in routes_mod.GATEWAY_RESPONSE_TYPES:
            self.add(
                logical_id("Gateway", "response", rtype),
                "AWS::ApiGateway::GatewayResponse",
                {
                    "RestApiId": {"Ref": API},
                    "ResponseType": rtype,
                    "ResponseParameters": api.gateway_parameters(),
                },
            )
        # The API's fingerprint names the deployment: any change to the API definition is a
        # new logical id, so CloudFormation makes a new deployment, as deploy does.
        deployment = logical_id("Deployment", api.fingerprint.rsplit(":", 1)[1])
        self.add(
            deployment,
            "AWS::ApiGateway::Deployment",
            {"RestApiId": {"Ref": API}, "Description": api.fingerprint},
            DependsOn=methods,
        )
        self.add(
            STAGE,
            "AWS::ApiGateway::Stage",
            {
                "RestApiId": {"Ref": API},
                "StageName": d.names.stage,
                "DeploymentId": {"Ref": deployment},
                "Tags": _tag_list(api.tags),
            },
        )

    def _method(self, spec: MethodSpec, resource_id: Any) -> str:
        api = self.d.api
        logical = logical_id(spec.path, spec.http_method)
        props: dict[str, Any] = {
            "RestApiId": {"Ref": API},
            "ResourceId": resource_id,
            "HttpMethod": spec.http_method,
            "AuthorizationType": "NONE",
            "ApiKeyRequired": spec.api_key_required,
        }
        if spec.kind == "proxy":
            props["Integration"] = {
                "Type": "AWS_PROXY",
                "IntegrationHttpMethod": "POST",
                "Uri": self._integration_uri(spec),
            }
        else:
            params = api.preflight_parameters(spec.path)
            allowed = {
                **dict.fromkeys(params, False),
                "method.response.header.Access-Control-Allow-Origin": False,
            }
            response = {
                "StatusCode": "200",
                "ResponseParameters": params,
                "ResponseTemplates": {"application/json": api.preflight_template},
            }
            props["MethodResponses"] = [{"StatusCode": "200", "ResponseParameters": allowed}]
            props["Integration"] = {
                "Type": "MOCK",
                "RequestTemplates": PREFLIGHT_REQUEST_TEMPLATES,
                "IntegrationResponses": [response],
            }
        self.add(logical, "AWS::ApiGateway::Method", props)
        return logical

    def _usage_plan(self) -> None:
        d, p = self.d, self.d.usage_plan
        self.add(
            USAGE_PLAN,
            "AWS::ApiGateway::UsagePlan",
            {
                "UsagePlanName": p.name,
                "Description": f"Throttle and quota for {d.names.base} (exported by scarab)",
                "ApiStages": [{"ApiId": {"Ref": API}, "Stage": {"Ref": STAGE}}],
                "Throttle": {"RateLimit": p.rate, "BurstLimit": p.burst},
                "Quota": {"Limit": p.quota_limit, "Period": p.quota_period},
                "Tags": _tag_list(p.tags),
            },
        )
        # No Value: CloudFormation generates the key, so none is written here.
        self.add(
            API_KEY,
            "AWS::ApiGateway::ApiKey",
            {
                "Name": p.first_key_name,
                "Description": f"API key for {d.names.base} (exported by scarab)",
                "Enabled": True,
                "Tags": _tag_list(d.tags),
            },
        )
        self.add(
            USAGE_PLAN_KEY,
            "AWS::ApiGateway::UsagePlanKey",
            {"KeyId": {"Ref": API_KEY}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": USAGE_PLAN}},
        )

    # Alarms and budget --------------------------------------------------------------

    def _alarms(self) -> None:
        """The topic, its email subscription and every alarm, with the topic's ARN as a
        reference (the model's is made of pseudo-parameters)."""
        alarms = self.d.alarms
        if alarms is None:
            return
        topic = alarms.topic
        self.add(
            ALARM_TOPIC,
            "AWS::SNS::Topic",
            {"TopicName": topic.name, "Tags": _tag_list(topic.tags)},
        )
        if topic.email is not None:
            self.add(
                ALARM_SUBSCRIPTION,
                "AWS::SNS::Subscription",
                {"TopicArn": {"Ref": ALARM_TOPIC}, "Protocol": "email", "Endpoint": topic.email},
            )
        for alarm in alarms.alarms:
            props = alarm.definition(topic.arn)
            props["AlarmActions"] = props["OKActions"] = [{"Ref": ALARM_TOPIC}]
            props["Tags"] = _tag_list(alarms.tags)
            suffix = alarm.name.removeprefix(self.d.names.alarm_prefix)
            self.add(logical_id("Alarm", suffix), "AWS::CloudWatch::Alarm", props)

    def _budget(self) -> None:
        b = self.d.budget
        if b is None:
            return
        budget = b.budget()
        # CloudFormation's Spend takes the amount as a number.
        budget["BudgetLimit"] = {"Amount": b.limit_usd, "Unit": "USD"}
        self.add(
            BUDGET,
            "AWS::Budgets::Budget",
            {
                "Budget": budget,
                "NotificationsWithSubscribers": [
                    {"Notification": n, "Subscribers": b.subscribers()} for n in b.notifications()
                ],
                "ResourceTags": _tag_list(b.tags),
            },
        )

    def _outputs(self) -> dict[str, Any]:
        stage = self.d.names.stage
        return {
            "ApiUrl": {
                "Description": "The stage's invoke URL",
                "Value": {
                    "Fn::Sub": f"https://${{{API}}}.execute-api.{REGION}.{URL_SUFFIX}/{stage}"
                },
            },
            **{
                own_id(fn, "FunctionArn"): {"Value": {"Fn::GetAtt": [own_id(fn, FUNCTION), "Arn"]}}
                for fn in self.d.functions
            },
            **{
                own_id(fn, "FunctionUrl"): {
                    "Description": f"The {fn.key} function's Function URL",
                    "Value": {"Fn::GetAtt": [own_id(fn, "Url"), "FunctionUrl"]},
                }
                for fn in self.d.functions
                if fn.url is not None
            },
            "RestApiId": {"Value": {"Ref": API}},
            "UsagePlanId": {"Value": {"Ref": USAGE_PLAN}},
            "ApiKeyId": {
                "Description": "aws apigateway get-api-key --include-value --api-key <id>",
                "Value": {"Ref": API_KEY},
            },
        }
