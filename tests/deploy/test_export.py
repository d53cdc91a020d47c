"""`scarab export`: the template is valid CloudFormation and SAM (cfn-lint, the SAM
translator), holds no secret, is rendered from the deploy's models, and describes exactly
what `deploy` creates on the moto server."""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint
from samtranslator.translator.transform import transform
from scarab.cli import app
from scarab.config import load_config
from scarab.deploy.export import FORMATS, render, to_json
from scarab.deploy.models import Code as ModelCode
from scarab.deploy.models import desired_state
from scarab.deploy.routes import ROUTES
from scarab.deploy.routes import resource_paths as route_paths
from scarab.functions import FUNCTIONS
from typer.testing import CliRunner

from tests.deploy.conftest import REPO, client, inline_policies, permission

ACCOUNT, REGION = "123456789012", "us-east-1"  # the moto server's
SECRET = "AIzaSy-export-test-secret-0123456789"


CODES = {f.name: ModelCode("zip") for f in FUNCTIONS}


def export(project: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    """Run `scarab export ARGS -o FILE` in the project; return the file's text."""
    monkeypatch.chdir(project)
    out = project / "exported.json"
    result = CliRunner().invoke(app, ["export", *args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_text()


def lint_matches(template: dict[str, Any]) -> dict[str, list[str]]:
    """cfn-lint's findings by severity (E errors, W warnings, I informational), each with
    its line and column in the text `scarab export` writes (cfn-lint 1.58's Match has no
    path; the message of most rules names the template path itself)."""
    found: dict[str, list[str]] = {"E": [], "W": [], "I": []}
    for match in lint(to_json(template), config=ManualArgs(regions=[REGION])):
        where = f"line {match.linenumber}:{match.columnnumber}"
        found[match.rule.id[0]].append(f"{match.rule.id} {where}: {match.message}")
    return found


class _NoManagedPolicies:
    """The translator's managed-policy lookup; the template names no managed policy."""

    def load(self) -> dict[str, str]:
        return {}


def sam_translate(template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)  # the translator's pseudo-parameters
    return transform(copy.deepcopy(template), {}, _NoManagedPolicies())  # type: ignore[arg-type]


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == kind}


def one(template: dict[str, Any], kind: str) -> dict[str, Any]:
    [props] = of_type(template, kind).values()
    return props


def resolve(value: Any, refs: dict[str, str]) -> Any:
    """Evaluate the template's Fn::Sub / Ref / GetAtt with the values of a real stack."""
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Fn::Sub":
            text = re.sub(r"\$\{([^!}][^}]*)\}", lambda m: refs[m.group(1)], arg)
            return text.replace("${!", "${")
        if fn == "Ref":
            return refs[arg]
        if fn == "Fn::GetAtt":
            return refs[".".join(arg)]
    if isinstance(value, dict):
        return {k: resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    return value


def resource_paths(template: dict[str, Any]) -> dict[str, str]:
    """logical id -> path of every AWS::ApiGateway::Resource (through the ParentId chain)."""
    resources = of_type(template, "AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical: str) -> str:
        props = resources[logical]
        parent = props["ParentId"]
        base = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"])
        paths[logical] = f"{base}/{props['PathPart']}"
        return paths[logical]

    for logical in resources:
        path_of(logical)
    return paths


# What the template says the stage is, and what the moto server has after a deploy, in one
# shape: resource type -> sorted names. Equal inventories mean the same kinds, counts, names.


def template_inventory(template: dict[str, Any], refs: dict[str, str]) -> dict[str, list[str]]:
    paths = resource_paths(template)
    get = {
        "AWS::IAM::Role": lambda p: p["RoleName"],
        "AWS::IAM::RolePolicy": lambda p: p["PolicyName"],
        "AWS::Lambda::Function": lambda p: p["FunctionName"],
        # One published version per function, and its `live` alias.
        "AWS::Lambda::Version": lambda p: function_name(template, p),
        "AWS::Lambda::Alias": lambda p: f"{function_name(template, p)}:{p['Name']}",
        "AWS::Logs::LogGroup": lambda p: f"{p['LogGroupName']} {p['RetentionInDays']}d",
        "AWS::ApiGateway::RestApi": lambda p: p["Name"],
        "AWS::ApiGateway::Resource": lambda p: paths[_logical(template, p)],
        "AWS::ApiGateway::Method": lambda p: (
            f"{p['HttpMethod']} {paths[p['ResourceId']['Ref']]} key={p['ApiKeyRequired']}"
            f" {p['Integration']['Type']}"
        ),
        "AWS::ApiGateway::GatewayResponse": lambda p: p["ResponseType"],
        # A fingerprint of the API definition, taken over the template's placeholders.
        "AWS::ApiGateway::Deployment": lambda p: p["Description"].split(":")[0],
        "AWS::ApiGateway::Stage": lambda p: p["StageName"],
        "AWS::Lambda::Permission": lambda p: resolve(p["SourceArn"], refs),
        "AWS::ApiGateway::UsagePlan": lambda p: p["UsagePlanName"],
        "AWS::ApiGateway::ApiKey": lambda p: p["Name"],
        "AWS::ApiGateway::UsagePlanKey": lambda p: p["KeyType"],
        "AWS::DynamoDB::Table": lambda p: (
            f"{p['TableName']} {p['BillingMode']}"
            f" {','.join(k['AttributeName'] + ':' + k['KeyType'] for k in p['KeySchema'])}"
        ),
        "AWS::S3::Bucket": lambda p: (
            f"{resolve(p['BucketName'], refs)}"
            f" versioning={p.get('VersioningConfiguration', {}).get('Status')}"
        ),
        "AWS::SQS::Queue": lambda p: f"{p['QueueName']} {p['MessageRetentionPeriod']}",
        "AWS::Lambda::EventSourceMapping": lambda p: (
            f"{resolve(p['EventSourceArn'], refs).rsplit(':', 1)[1]} batch={p['BatchSize']}"
            f" {','.join(p['FunctionResponseTypes'])}"
        ),
        "AWS::Lambda::EventInvokeConfig": lambda p: (
            f"{function_name(template, p)}:{p['Qualifier']} retries={p['MaximumRetryAttempts']}"
            f" age={p['MaximumEventAgeInSeconds']}"
        ),
        "AWS::SNS::Topic": lambda p: p["TopicName"],
        "AWS::CloudWatch::Alarm": lambda p: _alarm_line(p),
    }
    out: dict[str, list[str]] = {}
    for res in template["Resources"].values():
        out.setdefault(res["Type"], []).append(str(get[res["Type"]](res["Properties"])))
    return {k: sorted(v) for k, v in out.items()}


def function_name(template: dict[str, Any], props: dict[str, Any]) -> str:
    """The name of the function a version or alias refers to (FunctionName: a Ref)."""
    return str(template["Resources"][props["FunctionName"]["Ref"]]["Properties"]["FunctionName"])


def _alarm_line(a: dict[str, Any]) -> str:
    """An alarm (template properties or DescribeAlarms' answer) as one comparable line."""
    dims = ",".join(f"{d['Name']}={d['Value']}" for d in a["Dimensions"])
    stat = a.get("ExtendedStatistic") or a.get("Statistic")
    return (
        f"{a['AlarmName']} {a['Namespace']}/{a['MetricName']} {stat} {a['ComparisonOperator']}"
        f" {float(a['Threshold']):g} [{dims}] {a['TreatMissingData']}"
    )


def _logical(template: dict[str, Any], props: dict[str, Any]) -> str:
    return next(k for k, r in template["Resources"].items() if r["Properties"] is props)


def live_inventory(aws: Any, api_id: str, functions: list[str]) -> dict[str, list[str]]:
    iam, lam, logs = client("iam", aws), client("lambda", aws), client("logs", aws)
    apigw = client("apigateway", aws)
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    policies = [p for r in roles for p in iam.list_role_policies(RoleName=r)["PolicyNames"]]
    groups = logs.describe_log_groups()["logGroups"]
    resources = apigw.get_resources(restApiId=api_id, embed=["methods"])["items"]
    methods = []
    for res in resources:
        for verb in res.get("resourceMethods") or {}:
            m = apigw.get_method(restApiId=api_id, resourceId=res["id"], httpMethod=verb)
            integ = m["methodIntegration"]["type"]
            methods.append(f"{verb} {res['path']} key={m['apiKeyRequired']} {integ}")
    responses = [
        r["responseType"]
        for r in apigw.get_gateway_responses(restApiId=api_id)["items"]
        if "gatewayresponse.header.Access-Control-Allow-Origin" in r.get("responseParameters", {})
    ]
    plans = apigw.get_usage_plans()["items"]
    ddb, s3 = client("dynamodb", aws), client("s3", aws)
    tables = [ddb.describe_table(TableName=t)["Table"] for t in ddb.list_tables()["TableNames"]]
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    sqs = client("sqs", aws)
    queues = sqs.list_queues().get("QueueUrls", [])
    retention = {
        u.rsplit("/", 1)[1]: sqs.get_queue_attributes(
            QueueUrl=u, AttributeNames=["MessageRetentionPeriod"]
        )["Attributes"]["MessageRetentionPeriod"]
        for u in queues
    }
    queue_arns = [
        sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for u in queues
    ]
    invoke_configs = []
    for f in functions:
        try:
            got = lam.get_function_event_invoke_config(FunctionName=f, Qualifier="live")
        except lam.exceptions.ResourceNotFoundException:
            continue
        invoke_configs.append(
            f"{f}:live retries={got['MaximumRetryAttempts']} age={got['MaximumEventAgeInSeconds']}"
        )
    return {
        k: sorted(v)
        for k, v in {
            "AWS::IAM::Role": roles,
            "AWS::IAM::RolePolicy": policies,
            "AWS::Lambda::Function": [f["FunctionName"] for f in lam.list_functions()["Functions"]],
            "AWS::Lambda::Version": [
                f
                for f in functions
                for v in lam.list_versions_by_function(FunctionName=f)["Versions"]
                if v["Version"] != "$LATEST"
            ],
            "AWS::Lambda::Alias": [
                f"{f}:{a['Name']}"
                for f in functions
                for a in lam.list_aliases(FunctionName=f)["Aliases"]
            ],
            "AWS::Logs::LogGroup": [f"{g['logGroupName']} {g['retentionInDays']}d" for g in groups],
            "AWS::ApiGateway::RestApi": [a["name"] for a in apigw.get_rest_apis()["items"]],
            "AWS::ApiGateway::Resource": [r["path"] for r in resources if r["path"] != "/"],
            "AWS::ApiGateway::Method": methods,
            "AWS::ApiGateway::GatewayResponse": responses,
            "AWS::ApiGateway::Deployment": [
                d["description"].split(":")[0]
                for d in apigw.get_deployments(restApiId=api_id)["items"]
            ],
            "AWS::ApiGateway::Stage": [
                s["stageName"] for s in apigw.get_stages(restApiId=api_id)["item"]
            ],
            "AWS::Lambda::Permission": [
                s["Condition"]["ArnLike"]["AWS:SourceArn"]
                for f in functions
                for s in permission(lam, f)
            ],
            "AWS::ApiGateway::UsagePlan": [p["name"] for p in plans],
            "AWS::ApiGateway::ApiKey": [k["name"] for k in apigw.get_api_keys()["items"]],
            "AWS::ApiGateway::UsagePlanKey": [
                k["type"]
                for p in plans
                for k in apigw.get_usage_plan_keys(usagePlanId=p["id"])["items"]
            ],
            "AWS::DynamoDB::Table": [
                f"{t['TableName']} {t['BillingModeSummary']['BillingMode']}"
                f" {','.join(k['AttributeName'] + ':' + k['KeyType'] for k in t['KeySchema'])}"
                for t in tables
            ],
            "AWS::S3::Bucket": [
                f"{b} versioning={s3.get_bucket_versioning(Bucket=b).get('Status')}"
                for b in buckets
            ],
            "AWS::SQS::Queue": [f"{name} {days}" for name, days in retention.items()],
            "AWS::Lambda::EventSourceMapping": [
                f"{m['EventSourceArn'].rsplit(':', 1)[1]} batch={m['BatchSize']}"
                f" {','.join(m['FunctionResponseTypes'])}"
                for arn in queue_arns
                for m in lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
            ],
            "AWS::Lambda::EventInvokeConfig": invoke_configs,
            "AWS::SNS::Topic": [
                t["TopicArn"].rsplit(":", 1)[1] for t in client("sns", aws).list_topics()["Topics"]
            ],
            "AWS::CloudWatch::Alarm": [
                _alarm_line(a) for a in client("cloudwatch", aws).describe_alarms()["MetricAlarms"]
            ],
        }.items()
    }


# cfn-lint and the SAM translator ------------------------------------------------------


@pytest.mark.parametrize("package", ["zip", "image"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_template_lints_clean(project: Path, fmt: str, package: str) -> None:
    config = load_config(project, {"function.package": package})
    template = render(config, project_dir=project, fmt=fmt)  # type: ignore[arg-type]
    found = lint_matches(template)
    assert found["E"] == [], found["E"]
    assert found["W"] == [], found["W"]
    kinds = Counter(r["Type"] for r in template["Resources"].values())
    assert kinds["AWS::ECR::Repository"] == (1 if package == "image" else 0)


def test_the_sam_template_translates_to_the_cloudformation_one(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(project)
    sam = render(config, project_dir=project, fmt="sam")
    cfn = render(config, project_dir=project, fmt="cloudformation")
    assert sam["Transform"] == "AWS::Serverless-2016-10-31"
    translated = sam_translate(sam, monkeypatch)
    assert "Transform" not in translated
    assert lint_matches(translated)["E"] == []

    # Same resources, same logical ids; the function's properties agree but for the tag
    # SAM adds and the order of the tags.
    # SAM's AutoPublishAlias names each version by a hash of its code and digest; the
    # alias has the same id in both (AnalyzeFunctionAliaslive).
    def kinds(resources: dict[str, Any]) -> dict[str, str]:
        return {k: r["Type"] for k, r in resources.items() if r["Type"] != "AWS::Lambda::Version"}

    assert kinds(translated["Resources"]) == kinds(cfn["Resources"])
    sam_versions = of_type(translated, "AWS::Lambda::Version")
    assert len(sam_versions) == len(of_type(cfn, "AWS::Lambda::Version")) == 2
    for logical in ("AnalyzeFunction", "ModelsFunction"):
        [version] = [k for k, p in sam_versions.items() if p["FunctionName"] == {"Ref": logical}]
        assert sam_versions[version]["Description"].startswith("scarab config=")
        alias = translated["Resources"][f"{logical}Aliaslive"]["Properties"]
        assert alias["FunctionVersion"] == {"Fn::GetAtt": [version, "Version"]}
        assert alias["Name"] == "live"
    functions = {"AnalyzeFunction": "AnalyzeCodeKey", "ModelsFunction": "ModelsCodeKey"}
    for logical, key in functions.items():
        fn, want = translated["Resources"][logical], cfn["Resources"][logical]
        tags = {t["Key"]: t["Value"] for t in fn["Properties"].pop("Tags")}
        assert tags.pop("lambda:createdBy") == "SAM"
        assert tags == {t["Key"]: t["Value"] for t in want["Properties"].pop("Tags")}
        # SAM appends AutoPublishCodeSha256 (the configuration's digest) to the description,
        # so that a change of configuration alone updates the function and publishes.
        digest = sam["Resources"][logical]["Properties"]["AutoPublishCodeSha256"]
        got_description = fn["Properties"].pop("Description")
        assert got_description == f"{want['Properties'].pop('Description')} {digest}"
        assert fn["Properties"] == want["Properties"]
        assert fn["Properties"]["Code"] == {
            "S3Bucket": {"Ref": "CodeBucket"},
            "S3Key": {"Ref": key},
        }
        assert sorted(fn["DependsOn"]) == sorted(want["DependsOn"])
    for logical, res in cfn["Resources"].items():
        if logical not in functions and res["Type"] not in (
            "AWS::Lambda::Version",
            "AWS::Lambda::Alias",
        ):
            assert translated["Resources"][logical] == res, logical


def test_code_uri_sets_the_code_parameters(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = "s3://my-bucket/a/{function}.zip"
    text = export(project, monkeypatch, "--format", "sam", "--code-uri", uri)
    template = json.loads(text)
    assert template["Parameters"]["CodeBucket"]["Default"] == "my-bucket"
    assert template["Parameters"]["AnalyzeCodeKey"]["Default"] == "a/analyze.zip"
    assert template["Parameters"]["ModelsCodeKey"]["Default"] == "a/models.zip"
    translated = sam_translate(template, monkeypatch)
    # AutoPublishAlias: SAM resolves the code's parameters when it transforms (it names
    # the version by the code), with the values the stack is created with.
    assert translated["Resources"]["ModelsFunction"]["Properties"]["Code"] == {
        "S3Bucket": "my-bucket",
        "S3Key": "a/models.zip",
    }
    # Without --code-uri the parameters have no default: the stack asks for them.
    bare = json.loads(export(project, monkeypatch, "--format", "cloudformation"))
    assert "Default" not in bare["Parameters"]["CodeBucket"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "yaml"], "--format 'yaml': use cloudformation or sam."),
        (["--format", "sam", "--code-uri", "https://x/y.zip"], "is not an S3 URI"),
        (["--format", "sam", "--code-uri", "s3://bucket-only"], "is not an S3 URI"),
        # One zip for two functions: which is which?
        (["--format", "sam", "--code-uri", "s3://my-bucket/app.zip"], "put {function} in the key"),
    ],
)
def test_bad_options_are_usage_errors(
    project: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["export", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


# Rendered from the models -------------------------------------------------------------


def test_the_template_follows_the_config(project: Path) -> None:
    base = load_config(project)
    changed = load_config(
        project,
        {
            "api.throttle_rate": 7.5,
            "api.quota_period": "WEEK",
            "function.memory": 1024,
            "function.allowed_origins": ["https://a.example", "https://b.example"],
        },
    )
    before = render(base, project_dir=project, fmt="cloudformation")
    after = render(changed, project_dir=project, fmt="cloudformation")
    plan = one(after, "AWS::ApiGateway::UsagePlan")
    assert plan["Throttle"] == {"RateLimit": 7.5, "BurstLimit": 10}
    assert plan["Quota"] == {"Limit": 500, "Period": "WEEK"}
    assert one(before, "AWS::ApiGateway::UsagePlan")["Throttle"]["RateLimit"] == 5
    memory = {
        p["FunctionName"]: p["MemorySize"] for p in of_type(after, "AWS::Lambda::Function").values()
    }
    assert memory == {"scarab-test-analyze": 1024, "scarab-test-models": 1024}
    # One origin: a static Allow-Origin header. Two: the preflight template picks the
    # request's Origin when it is one of them, and the static header goes.
    header = "method.response.header.Access-Control-Allow-Origin"
    pre_before = before["Resources"]["AnalyzeOptions"]["Properties"]["Integration"]
    pre_after = after["Resources"]["AnalyzeOptions"]["Properties"]["Integration"]
    assert pre_before["IntegrationResponses"][0]["ResponseParameters"][header] == (
        "'http://localhost:3000'"
    )
    assert pre_before["IntegrationResponses"][0]["ResponseTemplates"] == {"application/json": ""}
    assert header not in pre_after["IntegrationResponses"][0]["ResponseParameters"]
    vtl = pre_after["IntegrationResponses"][0]["ResponseTemplates"]["application/json"]
    assert '$origin == "https://a.example" || $origin == "https://b.example"' in vtl
    for fn in of_type(after, "AWS::Lambda::Function").values():
        env = fn["Environment"]["Variables"]
        assert env["ALLOWED_ORIGINS"] == "https://a.example,https://b.example"
    # [functions.<name>] reaches only that function's resource.
    per_fn = load_config(project, {"functions.models.memory": 3008})
    exported = render(per_fn, project_dir=project, fmt="cloudformation")["Resources"]
    assert exported["ModelsFunction"]["Properties"]["MemorySize"] == 3008
    assert exported["AnalyzeFunction"]["Properties"]["MemorySize"] == 512
    # A changed API is a new deployment (its logical id is the API's fingerprint).
    deployments = [set(of_type(t, "AWS::ApiGateway::Deployment")) for t in (before, after)]
    assert deployments[0] != deployments[1]
    # And every preflight is the model's, path by path.
    d = desired_state(changed, account_id="1", region=REGION, partition="aws", codes=CODES)
    paths = {v: k for k, v in resource_paths(after).items()}
    for spec in d.api.methods:
        if spec.kind != "preflight":
            continue
        method = next(
            p
            for p in of_type(after, "AWS::ApiGateway::Method").values()
            if p["ResourceId"] == {"Ref": paths[spec.path]} and p["HttpMethod"] == "OPTIONS"
        )
        got = method["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
        assert got == d.api.preflight_parameters(spec.path)


def test_the_secrets_manager_backend_is_exported(project: Path) -> None:
    config = load_config(project, {"secrets.backend": "secretsmanager"})
    template = render(config, project_dir=project, fmt="cloudformation")
    policies = of_type(template, "AWS::IAM::RolePolicy")
    policy = policies["AnalyzeRolePolicyScarabReadSecret"]
    # Only the analyze function reads the key.
    assert "ModelsRolePolicyScarabReadSecret" not in policies
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Resource"] == {
        "Fn::Sub": (
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
            "secret:/scarab/scarab/test/gemini-api-key-??????"
        )
    }
    env = of_type(template, "AWS::Lambda::Function")["AnalyzeFunction"]["Environment"]
    assert env["Variables"]["GOOGLE_API_KEY_BACKEND"] == "secretsmanager"


def test_lint_matches_names_where_a_finding_is(project: Path) -> None:
    template = render(load_config(project), project_dir=project, fmt="cloudformation")
    template["Resources"]["ModelsFunction"]["Properties"]["MemorySize"] = "lots"
    line = next(n for n, text in enumerate(to_json(template).splitlines(), 1) if '"lots"' in text)
    found = lint_matches(template)["E"]
    assert any(f.startswith(f"E3012 line {line}:") for f in found), found


# Literal text: what a user wrote reaches the function as written, in either format, and no
# `${...}` in it is taken for a reference; characters outside the BMP survive the file.
LITERALS = {
    "REGION_TEXT": "${AWS::Region}",
    "ARN_TEXT": "${AnalyzeFunction.Arn}",
    "NOT_A_REF": "${not-a-ref}",
    "BANG": "${!x}",
    "MIXED": "a ${AWS::AccountId} b ${x} $ {y}",
    "GLYPHS": "\U00013080 \U0001f600 \u00e9 \u2603",
}


def _function_env(template: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The analyze function's environment."""
    kind = "AWS::Lambda::Function" if fmt == "cloudformation" else "AWS::Serverless::Function"
    return dict(of_type(template, kind)["AnalyzeFunction"]["Environment"]["Variables"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_literal_text_in_the_environment_round_trips(
    project: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    toml = project / "scarab.toml"
    table = ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in LITERALS.items())
    # The log's variables off: with them and these literals, cfn-lint's E3033 counts the
    # variables' names joined (over 256 characters), which is no AWS limit.
    text = toml.read_text().replace('FEATURE_X = "on"', table) + "\n[log]\nenabled = false\n"
    toml.write_text(text, encoding="utf-8")
    config = load_config(project)
    assert {k: config.function.environment[k] for k in LITERALS} == LITERALS
    monkeypatch.chdir(project)
    out = project / "exported.json"
    result = CliRunner().invoke(app, ["export", "--format", fmt, "-o", str(out)])
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    assert re.search(rb"\\u[dD][89abAB]", raw) is None  # no surrogate-pair escapes
    template = json.loads(raw.decode("utf-8"))
    # CloudFormation reads a template as YAML: the same document, character for character.
    assert yaml.safe_load(raw) == template
    found = lint_matches(template)
    assert found["E"] == [], found["E"]
    # The only warning: a Sub that only escapes `${` "isn't needed" (it is, for E1029).
    assert all(w.startswith("W1020 ") for w in found["W"]), found["W"]
    refs = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AnalyzeFunction.Arn": "arn:fn"}
    env = _function_env(template, fmt)
    want = (
        desired_state(config, account_id=ACCOUNT, region=REGION, partition="aws", codes=CODES)
        .function("analyze")
        .environment
    )
    assert resolve(env, refs) == want
    if fmt == "sam":
        translated = sam_translate(template, monkeypatch)
        assert resolve(_function_env(translated, "cloudformation"), refs) == want
        assert lint_matches(translated)["E"] == []


def test_stdout_is_utf8_whatever_the_locale(project: Path, tmp_path: Path) -> None:
    toml = project / "scarab.toml"
    glyphs = 'FEATURE_X = "\U00013080 \U0001f600"'
    toml.write_text(toml.read_text().replace('FEATURE_X = "on"', glyphs), encoding="utf-8")
    scarab = shutil.which("scarab", path=str(Path(sys.executable).parent))
    assert scarab is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHON"))}
    env.update(LC_ALL="C", LANG="C", PYTHONIOENCODING="ascii", PYTHONUTF8="0")
    proc = subprocess.run(
        [scarab, "export", "--format", "cloudformation"],
        cwd=project,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    assert "\U00013080 \U0001f600".encode() in proc.stdout  # as UTF-8, not escaped
    template = json.loads(proc.stdout.decode("utf-8"))
    assert yaml.safe_load(proc.stdout) == template
    assert _function_env(template, "cloudformation")["FEATURE_X"] == "\U00013080 \U0001f600"


# Against what deploy created -----------------------------------------------------------


@pytest.mark.emulator
def test_the_template_is_what_deploy_created(
    run_deploy, aws, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The log's URL stored: deploy turns the log on, as the template describes it.
    param = "/scarab/scarab/test/prediction-db-url"
    client("ssm", aws).put_parameter(Name=param, Value="sqlite:///x.db", Type="SecureString")
    result, _ = run_deploy()
    api_id = str(result.rest_api_id)
    template = json.loads(export(project, monkeypatch, "--format", "cloudformation"))
    refs = {
        "AWS::AccountId": ACCOUNT,
        "AWS::Region": REGION,
        "AWS::Partition": "aws",
        "Api": api_id,
        "JobsQueue.Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:scarab-test-jobs-dlq",
        **{f"{k.title()}Function.Arn": f["arn"] for k, f in result.functions.items()},
        # The `live` alias (a Ref to an alias is its ARN): what the API integrates.
        **{
            f"{k.title()}FunctionAliaslive": f"{f['arn']}:live" for k, f in result.functions.items()
        },
    }
    live = live_inventory(aws, api_id, [str(f["name"]) for f in result.functions.values()])
    assert template_inventory(template, refs) == live
    counts = {k: len(v) for k, v in live.items()}
    # analyze: logs + secret + cache + log + uploads + jobs; models: logs + registry +
    # cache + log + uploads.
    methods = len(ROUTES) + len(route_paths())  # every route, a preflight per resource (10 + 12)
    assert counts["AWS::ApiGateway::Method"] == methods == 22
    assert counts["AWS::IAM::RolePolicy"] == 11
    # The registry, the shared response cache and the jobs; the models' and the uploads'.
    assert counts["AWS::DynamoDB::Table"] == 3 and counts["AWS::S3::Bucket"] == 2
    assert counts["AWS::SQS::Queue"] == 1 and counts["AWS::Lambda::EventSourceMapping"] == 1
    assert counts["AWS::Lambda::EventInvokeConfig"] == 1
    assert counts["AWS::Lambda::Function"] == 2 and counts["AWS::Lambda::Permission"] == 2

    # The properties deploy set are the template's, once its references are resolved.
    iam, lam, apigw = client("iam", aws), client("lambda", aws), client("apigateway", aws)
    resources = template["Resources"]
    for key in ("Analyze", "Models"):
        role = resources[f"{key}Role"]["Properties"]
        assert (
            iam.get_role(RoleName=role["RoleName"])["Role"]["AssumeRolePolicyDocument"]
            == (role["AssumeRolePolicyDocument"])
        )
        assert iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"] == []
        assert "ManagedPolicyArns" not in role
        assert inline_policies(iam, role["RoleName"]) == {
            p["PolicyName"]: resolve(p["PolicyDocument"], refs)
            for p in of_type(template, "AWS::IAM::RolePolicy").values()
            if p["RoleName"] == {"Ref": f"{key}Role"}
        }
        fn = resources[f"{key}Function"]["Properties"]
        cfg = lam.get_function_configuration(FunctionName=fn["FunctionName"])
        assert cfg["Environment"]["Variables"] == resolve(fn["Environment"]["Variables"], refs)
        for field in ("Runtime", "Handler", "MemorySize", "Timeout", "Architectures"):
            assert cfg[field] == fn[field], field
        assert cfg["Role"] == iam.get_role(RoleName=role["RoleName"])["Role"]["Arn"]
        live_tags = lam.list_tags(Resource=cfg["FunctionArn"])["Tags"]
        assert {t["Key"]: t["Value"] for t in fn["Tags"]}.items() <= live_tags.items()
    rest = one(template, "AWS::ApiGateway::RestApi")
    got = apigw.get_rest_api(restApiId=api_id)
    assert sorted(got["binaryMediaTypes"]) == sorted(rest["BinaryMediaTypes"])
    assert got["endpointConfiguration"]["types"] == rest["EndpointConfiguration"]["Types"]
    ids = {r["path"]: r["id"] for r in apigw.get_resources(restApiId=api_id)["items"]}
    paths = resource_paths(template)
    for method in of_type(template, "AWS::ApiGateway::Method").values():
        path = paths[method["ResourceId"]["Ref"]]
        live_m = apigw.get_method(
            restApiId=api_id, resourceId=ids[path], httpMethod=method["HttpMethod"]
        )
        integ, want = live_m["methodIntegration"], method["Integration"]
        if want["Type"] == "AWS_PROXY":
            assert integ["uri"] == resolve(want["Uri"], refs)
            continue
        [response] = want["IntegrationResponses"]
        live_resp = integ["integrationResponses"]["200"]
        assert live_resp["responseParameters"] == response["ResponseParameters"]
        # moto answers an empty template as null
        live_template = (live_resp.get("responseTemplates") or {}).get("application/json")
        assert (live_template or "") == response["ResponseTemplates"]["application/json"]
    for gw in of_type(template, "AWS::ApiGateway::GatewayResponse").values():
        live_gw = apigw.get_gateway_response(restApiId=api_id, responseType=gw["ResponseType"])
        assert live_gw["responseParameters"] == gw["ResponseParameters"]
    plan = one(template, "AWS::ApiGateway::UsagePlan")
    [live_plan] = apigw.get_usage_plans()["items"]
    assert live_plan["throttle"] == {
        "rateLimit": plan["Throttle"]["RateLimit"],
        "burstLimit": plan["Throttle"]["BurstLimit"],
    }
    assert live_plan["quota"]["limit"] == plan["Quota"]["Limit"]
    assert live_plan["quota"]["period"] == plan["Quota"]["Period"]
    assert [(s["apiId"], s["stage"]) for s in live_plan["apiStages"]] == [
        (api_id, one(template, "AWS::ApiGateway::Stage")["StageName"])
    ]


@pytest.mark.emulator
def test_no_secret_and_no_key_value_in_the_template(
    run_deploy, aws, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setenv("EXPORT_TEST_SECRET", SECRET)
    stored = CliRunner().invoke(
        app,
        [
            "secrets",
            "set",
            "gemini-api-key",
            "--from-env",
            "EXPORT_TEST_SECRET",
            "--endpoint-url",
            aws.url,
        ],
    )
    assert stored.exit_code == 0, stored.output
    result, _ = run_deploy()
    name = "/scarab/scarab/test/gemini-api-key"
    stored_value = client("ssm", aws).get_parameter(Name=name, WithDecryption=True)
    assert stored_value["Parameter"]["Value"] == SECRET
    key = client("apigateway", aws).get_api_key(apiKey=str(result.api_key_id), includeValue=True)
    for fmt in FORMATS:
        text = export(project, monkeypatch, "--format", fmt)
        assert SECRET not in text
        assert key["value"] not in text
        template = json.loads(text)
        env = _function_env(template, fmt)
        assert env["GOOGLE_API_KEY_PARAM"] == name  # the name, read at run time
        assert "Value" not in one(template, "AWS::ApiGateway::ApiKey")


# The README's example, offline ---------------------------------------------------------


def readme_export_commands() -> list[str]:
    """Every `scarab export ...` line in the README's code blocks."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"^```\w*\n(.*?)^```", text, flags=re.S | re.M)
    return [
        line.split("#", 1)[0].strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip().startswith("scarab export ")
    ]


def test_the_readme_examples_run_offline(project: Path, tmp_path: Path) -> None:
    commands = readme_export_commands()
    assert any("--format sam -o template.json" in c for c in commands), commands
    scarab = shutil.which("scarab", path=str(Path(sys.executable).parent))
    assert scarab is not None
    # No credentials anywhere, and any AWS call would go to a closed port.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
    )
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "scarab"
        proc = subprocess.run(
            [scarab, *argv[1:]],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, (command, proc.stderr)
        out = argv[argv.index("-o") + 1] if "-o" in argv else None
        text = (project / out).read_text() if out else proc.stdout
        template = json.loads(text)
        assert lint_matches(template)["E"] == [], command


# [functions.<name>.url] --------------------------------------------------------------

URL_CONFIG = """
[functions.models.url]
auth = "NONE"
[functions.models.url.cors]
allow_origins = ["https://dash.example.com"]
allow_methods = ["GET"]
max_age = 120
[functions.analyze.url]
auth = "AWS_IAM"
"""


@pytest.mark.parametrize("fmt", FORMATS)
def test_function_urls_are_exported_and_lint_clean(project: Path, fmt: str) -> None:
    (project / "scarab.toml").write_text((project / "scarab.toml").read_text() + URL_CONFIG)
    template = render(load_config(project), project_dir=project, fmt=fmt)  # type: ignore[arg-type]
    found = lint_matches(template)
    assert found["E"] == [], found["E"]
    assert found["W"] == [], found["W"]
    urls = of_type(template, "AWS::Lambda::Url")
    # On the `live` alias, as deploy makes them.
    assert urls["ModelsUrl"] == {
        "TargetFunctionArn": {"Fn::GetAtt": ["ModelsFunction", "Arn"]},
        "Qualifier": "live",
        "AuthType": "NONE",
        "Cors": {"AllowOrigins": ["https://dash.example.com"], "AllowMethods": ["GET"],
                 "MaxAge": 120},
    }  # fmt: skip
    assert urls["AnalyzeUrl"] == {
        "TargetFunctionArn": {"Fn::GetAtt": ["AnalyzeFunction", "Arn"]},
        "Qualifier": "live",
        "AuthType": "AWS_IAM",
    }
    # Only the auth NONE URL gets a public grant, and only for the URL.
    public = {
        k: p
        for k, p in of_type(template, "AWS::Lambda::Permission").items()
        if p["Principal"] == "*"
    }
    assert public == {
        "ModelsUrlPermission": {
            "FunctionName": {"Ref": "ModelsFunctionAliaslive"},
            "Action": "lambda:InvokeFunctionUrl",
            "Principal": "*",
            "FunctionUrlAuthType": "NONE",
        }
    }
    assert template["Outputs"]["ModelsFunctionUrl"]["Value"] == {
        "Fn::GetAtt": ["ModelsUrl", "FunctionUrl"]
    }


def test_no_url_section_exports_no_url(project: Path) -> None:
    template = render(load_config(project), project_dir=project, fmt="cloudformation")
    assert of_type(template, "AWS::Lambda::Url") == {}


def test_versions_and_the_live_alias_are_exported(project: Path) -> None:
    config = load_config(project)
    cfn = render(config, project_dir=project, fmt="cloudformation")
    sam = render(config, project_dir=project, fmt="sam")
    resources = cfn["Resources"]
    assert resources["AnalyzeFunctionAliaslive"]["Properties"] == {
        "FunctionName": {"Ref": "AnalyzeFunction"},
        "FunctionVersion": {"Fn::GetAtt": ["AnalyzeVersion", "Version"]},
        "Name": "live",
    }
    version = resources["AnalyzeVersion"]
    # A replaced version stays: a rollback has something to go back to.
    assert version["DeletionPolicy"] == version["UpdateReplacePolicy"] == "Retain"
    # The API invokes the alias, with the permission on it, in both formats.
    for template in (cfn, sam):
        post = template["Resources"]["AnalyzePost"]["Properties"]["Integration"]["Uri"]
        assert "${AnalyzeFunctionAliaslive}/invocations" in post["Fn::Sub"]
        grant = template["Resources"]["AnalyzePermission"]["Properties"]
        assert grant["FunctionName"] == {"Ref": "AnalyzeFunctionAliaslive"}
    assert sam["Resources"]["AnalyzeFunction"]["Properties"]["AutoPublishAlias"] == "live"
    # A change of configuration alone publishes a version in both (SAM's AutoPublishAlias
    # alone would keep the alias on the old version).
    bigger = load_config(project, {"functions.analyze.memory": 1024})
    cfn2 = render(bigger, project_dir=project, fmt="cloudformation")
    sam2 = render(bigger, project_dir=project, fmt="sam")
    described = [
        t["Resources"]["AnalyzeVersion"]["Properties"]["Description"]["Fn::Sub"]
        for t in (cfn, cfn2)
    ]
    assert described[0] != described[1] and "${AnalyzeCodeKey}" in described[0]
    digests = [
        t["Resources"]["AnalyzeFunction"]["Properties"]["AutoPublishCodeSha256"]
        for t in (sam, sam2)
    ]
    assert digests[0] != digests[1]
    # The other function's version is untouched.
    assert cfn["Resources"]["ModelsVersion"] == cfn2["Resources"]["ModelsVersion"]
