"""The AWS calls behind each plan step. Every function here mutates; the planner
decides whether they run, so they do no reading beyond what they need to finish.
"""

from __future__ import annotations

import json
import time
from typing import Any

from scarab.artifacts.zip import LAMBDA_ZIP_LIMIT
from scarab.aws import Aws, call, error_code
from scarab.deploy.models import FunctionSpec, MethodSpec
from scarab.deploy.plan import Context
from scarab.errors import ScarabError

# Lambda cannot assume a role for a few seconds after IAM creates it.
_ROLE_NOT_READY = "cannot be assumed by Lambda"


# IAM ---------------------------------------------------------------------------------


def create_role(ctx: Context) -> None:
    d = ctx.desired
    call(
        ctx.aws.client("iam").create_role,
        RoleName=d.names.role,
        AssumeRolePolicyDocument=json.dumps(d.role_trust),
        Description=f"Execution role of the {d.names.function} function (scarab)",
        Tags=[{"Key": k, "Value": v} for k, v in d.tags.items()],
    )


def update_trust(ctx: Context) -> None:
    d = ctx.desired
    call(
        ctx.aws.client("iam").update_assume_role_policy,
        RoleName=d.names.role,
        PolicyDocument=json.dumps(d.role_trust),
    )


def attach_policy(arn: str) -> Any:
    def run(ctx: Context) -> None:
        call(
            ctx.aws.client("iam").attach_role_policy,
            RoleName=ctx.desired.names.role,
            PolicyArn=arn,
        )

    return run


def detach_policy(arn: str) -> Any:
    def run(ctx: Context) -> None:
        call(
            ctx.aws.client("iam").detach_role_policy,
            RoleName=ctx.desired.names.role,
            PolicyArn=arn,
        )

    return run


def put_inline_policy(name: str) -> Any:
    def run(ctx: Context) -> None:
        d = ctx.desired
        call(
            ctx.aws.client("iam").put_role_policy,
            RoleName=d.names.role,
            PolicyName=name,
            PolicyDocument=json.dumps(d.inline_policies[name]),
        )

    return run


# Logs --------------------------------------------------------------------------------


def create_log_group(ctx: Context) -> None:
    d = ctx.desired
    call(
        ctx.aws.client("logs").create_log_group,
        logGroupName=d.names.log_group,
        tags=d.tags,
    )


def put_retention(ctx: Context) -> None:
    d = ctx.desired
    call(
        ctx.aws.client("logs").put_retention_policy,
        logGroupName=d.names.log_group,
        retentionInDays=d.log_retention_days,
    )


# ECR and the image -------------------------------------------------------------------


def create_repository(ctx: Context) -> None:
    d = ctx.desired
    call(
        ctx.aws.client("ecr").create_repository,
        repositoryName=d.names.ecr_repository,
        imageScanningConfiguration={"scanOnPush": True},
        imageTagMutability="MUTABLE",
        tags=[{"Key": k, "Value": v} for k, v in d.tags.items()],
    )
    lifecycle = {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"keep the last {d.images_keep_last} images",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": d.images_keep_last,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    call(
        ctx.aws.client("ecr").put_lifecycle_policy,
        repositoryName=d.names.ecr_repository,
        lifecyclePolicyText=json.dumps(lifecycle),
    )


def push_image(project_dir: Any) -> Any:
    def run(ctx: Context) -> None:
        import base64

        from scarab.artifacts.image import build_image, push_image

        d = ctx.desired
        code = d.function.code
        build = build_image(project_dir, d.function.architecture)
        token = call(ctx.aws.client("ecr").get_authorization_token)["authorizationData"][0]
        user_pass = base64.b64decode(token["authorizationToken"]).decode()
        registry = token["proxyEndpoint"].removeprefix("https://")
        push_image(build, str(code.image_repository), registry, user_pass.partition(":")[2])

    return run


# Lambda ------------------------------------------------------------------------------


def wait_for_function(aws: Aws, name: str, timeout: float = 300.0) -> None:
    """Wait until the function is Active and no update is in progress."""
    lam = aws.client("lambda")
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        cfg = call(lam.get_function_configuration, FunctionName=name)
        state = cfg.get("State", "Active")
        update = cfg.get("LastUpdateStatus", "Successful")
        if state == "Failed" or update == "Failed":
            reason = cfg.get("StateReason") or cfg.get("LastUpdateStatusReason") or "unknown"
            raise ScarabError(f"Lambda reports the function {name} failed: {reason}")
        if state != "Pending" and update != "InProgress":
            return
        if time.monotonic() > deadline:
            raise ScarabError(
                f"The function {name} is still updating after {timeout:.0f}s; re-run the"
                " deploy in a minute."
            )
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _code_args(ctx: Context, project_bucket: str | None) -> dict[str, Any]:
    code = ctx.desired.function.code
    if code.package == "image":
        return {"ImageUri": f"{code.image_repository}:{code.image_tag}"}
    assert code.zip_path is not None
    data_path = code.zip_path
    if project_bucket is None:
        with open(data_path, "rb") as fh:
            return {"ZipFile": fh.read()}
    key = f"{ctx.desired.names.function}/{_hex(str(code.zip_sha256_b64))}.zip"
    _upload(ctx, project_bucket, key, data_path)
    return {"S3Bucket": project_bucket, "S3Key": key}


def _hex(b64: str) -> str:
    import base64

    return base64.b64decode(b64).hex()


def _upload(ctx: Context, bucket: str, key: str, path: str) -> None:
    """Put the zip in the artifact bucket (created on first use); Lambda reads it from there.

    Every call names the bucket's expected owner (this account), so a bucket of the same
    name in another account is refused by S3 instead of receiving our code. CreateBucket
    is the one call that takes no owner: a bucket it creates is ours.
    """
    s3 = ctx.aws.client("s3")
    owner = ctx.desired.account_id
    try:
        call(s3.head_bucket, Bucket=bucket, ExpectedBucketOwner=owner)
    except Exception as exc:
        if error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            if error_code(exc) in {"403", "AccessDenied", "Forbidden"}:
                raise ScarabError(
                    f"The artifact bucket {bucket} exists but is not this account's"
                    f" ({owner}), or this identity may not read it; scarab will not upload"
                    " the function's code there."
                ) from None
            raise
        params: dict[str, Any] = {"Bucket": bucket}
        if ctx.aws.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": ctx.aws.region}
        call(s3.create_bucket, **params)
        call(
            s3.put_public_access_block,
            Bucket=bucket,
            ExpectedBucketOwner=owner,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    call(
        s3.upload_file,
        Filename=path,
        Bucket=bucket,
        Key=key,
        ExtraArgs={"ExpectedBucketOwner": owner},
    )


def _artifact_bucket(ctx: Context) -> str | None:
    code = ctx.desired.function.code
    if code.package != "zip" or code.zip_size <= LAMBDA_ZIP_LIMIT:
        return None
    return ctx.desired.names.artifact_bucket(ctx.desired.account_id, ctx.desired.region)


def create_function(env: dict[str, str]) -> Any:
    def run(ctx: Context) -> None:
        fn: FunctionSpec = ctx.desired.function
        params: dict[str, Any] = {
            "FunctionName": fn.name,
            "Role": ctx.desired.role_arn,
            "Code": _code_args(ctx, _artifact_bucket(ctx)),
            "MemorySize": fn.memory,
            "Timeout": fn.timeout,
            "Architectures": [fn.architecture],
            "Environment": {"Variables": env},
            "Tags": fn.tags,
            "Description": "Scarab image analysis (deployed by scarab)",
        }
        if fn.code.package == "image":
            params["PackageType"] = "Image"
        else:
            params.update(PackageType="Zip", Runtime=fn.runtime, Handler=fn.handler)
        call(
            ctx.aws.client("lambda").create_function,
            retry_codes=frozenset(),
            retry_message=_ROLE_NOT_READY,
            attempts=12,
            **params,
        )
        wait_for_function(ctx.aws, fn.name)

    return run


def update_code(ctx: Context) -> None:
    fn = ctx.desired.function
    args = _code_args(ctx, _artifact_bucket(ctx))
    call(
        ctx.aws.client("lambda").update_function_code,
        FunctionName=fn.name,
        Architectures=[fn.architecture],
        **args,
    )
    wait_for_function(ctx.aws, fn.name)


def update_configuration(env: dict[str, str]) -> Any:
    def run(ctx: Context) -> None:
        fn = ctx.desired.function
        params: dict[str, Any] = {
            "FunctionName": fn.name,
            "Role": ctx.desired.role_arn,
            "MemorySize": fn.memory,
            "Timeout": fn.timeout,
            "Environment": {"Variables": env},
        }
        if fn.code.package == "zip":
            params.update(Runtime=fn.runtime, Handler=fn.handler)
        call(
            ctx.aws.client("lambda").update_function_configuration,
            retry_message=_ROLE_NOT_READY,
            **params,
        )
        wait_for_function(ctx.aws, fn.name)

    return run


def tag_function(ctx: Context) -> None:
    fn = ctx.desired.function
    call(ctx.aws.client("lambda").tag_resource, Resource=fn.arn, Tags=fn.tags)


def add_permission(ctx: Context) -> None:
    d = ctx.desired
    call(
        ctx.aws.client("lambda").add_permission,
        FunctionName=d.function.name,
        StatementId=d.names.permission_sid,
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=source_arn(ctx),
    )


def remove_permission(ctx: Context) -> None:
    d = ctx.desired
    call(
        ctx.aws.client("lambda").remove_permission,
        FunctionName=d.function.name,
        StatementId=d.names.permission_sid,
    )


def source_arn(ctx: Context) -> str:
    """The permission's source: this API's stage (any method and path) and nothing else."""
    return ctx.desired.source_arn(str(ctx.rest_api_id))


# API Gateway -------------------------------------------------------------------------


def create_rest_api(ctx: Context) -> None:
    d = ctx.desired
    apigw = ctx.aws.client("apigateway")
    api = call(
        apigw.create_rest_api,
        name=d.api.name,
        description=f"Scarab API, stage {d.names.stage} (managed by scarab)",
        endpointConfiguration={"types": ["REGIONAL"]},
        apiKeySource="HEADER",
        binaryMediaTypes=list(d.api.binary_media_types),
        tags=d.api.tags,
    )
    ctx.rest_api_id = api["id"]
    # Some emulators drop binaryMediaTypes on create; the answer says what was kept.
    kept = set(api.get("binaryMediaTypes") or ())
    missing = tuple(t for t in d.api.binary_media_types if t not in kept)
    if missing:
        patch_binary_media_types(missing, ())(ctx)
    items = call(apigw.get_resources, restApiId=api["id"])["items"]
    ctx.resource_ids = {r["path"]: r["id"] for r in items}


def patch_binary_media_types(add: tuple[str, ...], remove: tuple[str, ...]) -> Any:
    """Add and remove binary media types (each a patch path with "/" spelled "~1")."""

    def run(ctx: Context) -> None:
        # AWS reads the type from the path; emulators read "value": both are given.
        ops = [
            {"op": "remove", "path": f"/binaryMediaTypes/{t.replace('/', '~1')}", "value": t}
            for t in remove
        ] + [
            {"op": "add", "path": f"/binaryMediaTypes/{t.replace('/', '~1')}", "value": t}
            for t in add
        ]
        call(
            ctx.aws.client("apigateway").update_rest_api,
            restApiId=ctx.rest_api_id,
            patchOperations=ops,
        )

    return run


def create_resource(path: str) -> Any:
    def run(ctx: Context) -> None:
        parent = path.rsplit("/", 1)[0] or "/"
        res = call(
            ctx.aws.client("apigateway").create_resource,
            restApiId=ctx.rest_api_id,
            parentId=ctx.resource_ids[parent],
            pathPart=path.rsplit("/", 1)[1],
        )
        ctx.resource_ids[path] = res["id"]

    return run


def delete_resource(path: str) -> Any:
    def run(ctx: Context) -> None:
        call(
            ctx.aws.client("apigateway").delete_resource,
            restApiId=ctx.rest_api_id,
            resourceId=ctx.resource_ids.pop(path),
        )

    return run


def delete_method(path: str, verb: str) -> Any:
    def run(ctx: Context) -> None:
        call(
            ctx.aws.client("apigateway").delete_method,
            restApiId=ctx.rest_api_id,
            resourceId=ctx.resource_ids[path],
            httpMethod=verb,
        )

    return run


def put_method(spec: MethodSpec, replace: bool) -> Any:
    """Create the method and its integration (deleting a drifted one first)."""

    def run(ctx: Context) -> None:
        apigw = ctx.aws.client("apigateway")
        api = ctx.desired.api
        ids: dict[str, Any] = {
            "restApiId": ctx.rest_api_id,
            "resourceId": ctx.resource_ids[spec.path],
            "httpMethod": spec.http_method,
        }
        if replace:
            call(apigw.delete_method, **ids)
        call(
            apigw.put_method,
            authorizationType="NONE",
            apiKeyRequired=spec.api_key_required,
            **ids,
        )
        if spec.kind == "proxy":
            call(
                apigw.put_integration,
                type="AWS_PROXY",
                integrationHttpMethod="POST",
                uri=api.integration_uri,
                **ids,
            )
            return
        params = api.preflight_parameters(spec.path)
        call(
            apigw.put_method_response,
            statusCode="200",
            responseParameters={
                **dict.fromkeys(params, False),
                "method.response.header.Access-Control-Allow-Origin": False,
            },
            **ids,
        )
        call(
            apigw.put_integration,
            type="MOCK",
            requestTemplates={"application/json": '{"statusCode": 200}'},
            **ids,
        )
        call(
            apigw.put_integration_response,
            statusCode="200",
            responseParameters=params,
            responseTemplates={"application/json": api.preflight_template},
            **ids,
        )

    return run


def put_gateway_response(response_type: str) -> Any:
    def run(ctx: Context) -> None:
        call(
            ctx.aws.client("apigateway").put_gateway_response,
            restApiId=ctx.rest_api_id,
            responseType=response_type,
            responseParameters=ctx.desired.api.gateway_parameters(),
        )

    return run


def create_deployment(ctx: Context) -> None:
    d = ctx.desired
    call(
        ctx.aws.client("apigateway").create_deployment,
        restApiId=ctx.rest_api_id,
        stageName=d.names.stage,
        description=d.api.fingerprint,
    )


def create_usage_plan(ctx: Context) -> None:
    p = ctx.desired.usage_plan
    plan = call(
        ctx.aws.client("apigateway").create_usage_plan,
        name=p.name,
        description=f"Throttle and quota for {ctx.desired.names.base} (managed by scarab)",
        apiStages=[{"apiId": ctx.rest_api_id, "stage": ctx.desired.names.stage}],
        throttle={"rateLimit": p.rate, "burstLimit": p.burst},
        quota={"limit": p.quota_limit, "period": p.quota_period},
        tags=p.tags,
    )
    ctx.usage_plan_id = plan["id"]


def patch_usage_plan(ops_for: Any) -> Any:
    def run(ctx: Context) -> None:
        call(
            ctx.aws.client("apigateway").update_usage_plan,
            usagePlanId=ctx.usage_plan_id,
            patchOperations=ops_for(ctx),
        )

    return run


def create_first_key(ctx: Context) -> None:
    from scarab.keys import _create_and_attach

    key_id = _create_and_attach(
        ctx.aws, ctx.desired.names, str(ctx.usage_plan_id), ctx.desired.usage_plan.first_key_name
    )
    ctx.key_ids.append(key_id)


def attach_key(key_id: str) -> Any:
    def run(ctx: Context) -> None:
        call(
            ctx.aws.client("apigateway").create_usage_plan_key,
            usagePlanId=ctx.usage_plan_id,
            keyId=key_id,
            keyType="API_KEY",
        )
        ctx.key_ids.append(key_id)

    return run
