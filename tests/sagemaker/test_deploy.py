"""--target sagemaker end to end against the moto server, on ONE deployment: the plan
(no docker on PATH) is exactly the calls the first deploy makes, a redeploy makes none,
a memory change rotates the EndpointConfig, a model change the Model and model.tar.gz,
invoke/status read it, destroy leaves nothing. The tests run in file order, each on
the stage the one before left (one deploy for the module: the suite's time budget)."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scarab.artifacts.image import SERVER_DOCKERFILE, image_tag
from scarab.aws import is_mutating
from scarab.config import load_config
from scarab.errors import ScarabError
from scarab.naming import TAG_APP, TAG_STAGE
from scarab.targets.sagemaker.pipeline import EndpointResult, invoke_endpoint

from tests.deploy.conftest import Recorder, counted_session
from tests.deploy.test_image import commands
from tests.sagemaker.conftest import ACCOUNT, BUCKET, ENDPOINT, REPOSITORY, ROLE, Env

pytestmark = pytest.mark.emulator

REGISTRY = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
PACKAGED = ["bikes-1h", "bikes-3h", "digits", "tabular"]  # lambda/lens/predict/artifacts
TAGS = {TAG_APP: "scarab", TAG_STAGE: "smk"}
LOCK = "ssm"  # the stage lock's calls (PutParameter/DeleteParameter), not in any plan


@dataclass
class First:
    plan: dict[str, Any]
    result: EndpointResult
    recorder: Recorder
    tag: str


def mutating(recorder: Recorder) -> list[tuple[str, dict[str, Any]]]:
    """The mutating calls made, with their parameters, the lock's left out."""
    return [
        (f"{model.service_model.service_name}.{model.name}", params)
        for model, params in recorder.requests
        if is_mutating(model.name) and model.service_model.service_name != LOCK
    ]


@pytest.fixture(scope="module")
def first(env: Env, tmp_path_factory: pytest.TempPathFactory) -> First:
    """`scarab plan --target sagemaker --json` with no docker on PATH, then the deploy."""
    empty = tmp_path_factory.mktemp("nodocker")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", str(empty))
        got = env.cli("plan", "--target", "sagemaker", "--json")
    assert got.exit_code == 0, got.output
    plan = json.loads(got.output)
    result, recorder = env.deploy()
    tag = image_tag(env.project, "x86_64", SERVER_DOCKERFILE)
    return First(plan, result, recorder, tag)


def test_plan_is_exactly_the_first_deploys_calls(first: First) -> None:
    planned = [
        (f"{c['service']}.{c['operation']}", c["params"])
        for step in first.plan["steps"]
        for c in step["calls"]
        if c["service"] != "docker" and is_mutating(c["operation"])
    ]
    made = mutating(first.recorder)
    assert (
        [name for name, _ in planned]
        == [name for name, _ in made]
        == [
            "ecr.CreateRepository",
            "ecr.PutLifecyclePolicy",
            "s3.CreateBucket",
            "s3.PutPublicAccessBlock",
            "s3.PutObject",
            "s3.PutObjectTagging",
            "iam.CreateRole",
            "iam.PutRolePolicy",
            "logs.CreateLogGroup",
            "logs.PutRetentionPolicy",
            "sagemaker.CreateModel",
            "sagemaker.CreateEndpointConfig",
            "sagemaker.CreateEndpoint",
        ]
    )
    for (name, shown), (_, sent) in zip(planned, made, strict=True):
        if name == "s3.PutObject":  # the body is shown as its size and hash
            assert shown["Key"] == sent["Key"] and shown["Body"].startswith("<model ")
            continue
        assert shown == json.loads(json.dumps(sent)), name
    pushes = [c for s in first.plan["steps"] for c in s["calls"] if c["service"] == "docker"]
    image = f"{REGISTRY}/{REPOSITORY}:{first.tag}"
    assert pushes == [
        {
            "service": "docker",
            "operation": "Push",
            "params": {"image": image, "dockerfile": SERVER_DOCKERFILE},
        }
    ]


def test_first_deploy_builds_and_pushes_the_server_image(env: Env, first: First) -> None:
    argv = [c["argv"] for c in commands(env.docker_log)]
    local = f"scarab-server:{first.tag}"
    remote = f"{REGISTRY}/{REPOSITORY}:{first.tag}"
    lam = str(env.project / "lambda")
    assert argv == [
        ["info", "--format", "{{.ServerVersion}}"],
        ["build", "--platform", "linux/amd64", "--provenance=false",
         "--file", f"{lam}/server.Dockerfile", "--tag", local, lam],
        ["login", "--username", "AWS", "--password-stdin", REGISTRY],
        ["tag", local, remote],
        ["push", remote],
    ]  # fmt: skip
    assert first.result.image_uri == remote


def test_first_deploy_resources(env: Env, first: First) -> None:
    sm, iam = env.client("sagemaker"), env.client("iam")
    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == first.result.endpoint_config
    cfg = sm.describe_endpoint_config(EndpointConfigName=first.result.endpoint_config)
    [variant] = cfg["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert variant["ModelName"] == first.result.model_name
    model = sm.describe_model(ModelName=first.result.model_name)
    key = first.result.model_data_url.removeprefix(f"s3://{BUCKET}/")
    assert key.startswith(f"sagemaker/{ENDPOINT}/model-") and key.endswith(".tar.gz")
    assert model["PrimaryContainer"] == {
        "Image": f"{REGISTRY}/{REPOSITORY}:{first.tag}",
        "ModelDataUrl": f"s3://{BUCKET}/{key}",
        "Environment": {
            "EXECUTION_MODE": "standalone",
            "SCARAB_MODEL_DIR": "/opt/ml/model",
            "SCARAB_ENDPOINT_MODELS": ",".join(PACKAGED),
        },
    }
    role = iam.get_role(RoleName=ROLE)["Role"]
    assert model["ExecutionRoleArn"] == role["Arn"]
    ecr = env.client("ecr")
    rules = json.loads(ecr.get_lifecycle_policy(repositoryName=REPOSITORY)["lifecyclePolicyText"])
    assert rules["rules"][0]["selection"]["countNumber"] == 10  # [images] keep_last
    [group] = env.client("logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/sagemaker/Endpoints/{ENDPOINT}"
    )["logGroups"]
    assert group["retentionInDays"] == 14  # [function] log_retention_days
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    assert iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == ["scarab-sagemaker-endpoint"]
    doc = iam.get_role_policy(RoleName=ROLE, PolicyName="scarab-sagemaker-endpoint")
    grants = {s["Sid"]: (s["Action"], s["Resource"]) for s in doc["PolicyDocument"]["Statement"]}
    assert grants == {
        "PullServerImage": (
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{REPOSITORY}",
        ),
        "EcrToken": ("ecr:GetAuthorizationToken", "*"),
        "ReadModelData": ("s3:GetObject", f"arn:aws:s3:::{BUCKET}/sagemaker/{ENDPOINT}/*"),
        "WriteOwnLogs": (
            ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{ENDPOINT}:*",
        ),
    }


def test_the_state_record(env: Env, first: First) -> None:
    record = env.project / ".scarab" / "local" / "state" / "smk.sagemaker.json"
    data = json.loads(record.read_text())
    assert {k: data[k] for k in ("endpoint", "endpoint_config", "model", "models")} == {
        "endpoint": ENDPOINT,
        "endpoint_config": first.result.endpoint_config,
        "model": first.result.model_name,
        "models": PACKAGED,
    }
    assert (data["region"], data["account_id"], data["endpoint_url"]) == (
        "us-east-1", ACCOUNT, env.moto.url,
    )  # fmt: skip
    assert (data["memory_mb"], data["max_concurrency"]) == (2048, 5)


def test_everything_is_tagged(env: Env, first: First) -> None:
    sm = env.client("sagemaker")
    arns = [
        sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointArn"],
        sm.describe_endpoint_config(EndpointConfigName=first.result.endpoint_config)[
            "EndpointConfigArn"
        ],
        sm.describe_model(ModelName=first.result.model_name)["ModelArn"],
    ]
    for arn in arns:
        tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}
        assert tags == TAGS, arn
    iam_tags = env.client("iam").list_role_tags(RoleName=ROLE)["Tags"]
    assert {t["Key"]: t["Value"] for t in iam_tags} == TAGS
    ecr = env.client("ecr")
    repo_arn = ecr.describe_repositories(repositoryNames=[REPOSITORY])["repositories"][0][
        "repositoryArn"
    ]
    ecr_tags = ecr.list_tags_for_resource(resourceArn=repo_arn)["tags"]
    assert {t["Key"]: t["Value"] for t in ecr_tags} == TAGS
    group = f"/aws/sagemaker/Endpoints/{ENDPOINT}"
    assert env.client("logs").list_tags_log_group(logGroupName=group)["tags"] == TAGS
    key = first.result.model_data_url.removeprefix(f"s3://{BUCKET}/")
    s3_tags = env.client("s3").get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
    assert {t["Key"]: t["Value"] for t in s3_tags} == TAGS


def test_uploaded_model_tar_is_the_packed_one(env: Env, first: First, tmp_path: Path) -> None:
    key = first.result.model_data_url.removeprefix(f"s3://{BUCKET}/")
    body = env.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    (tmp_path / "model.tar.gz").write_bytes(body)
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        names = tar.getnames()
        registry = json.loads(tar.extractfile("registry.json").read())  # type: ignore[union-attr]
    assert sorted(m["name"] for m in registry["models"]) == PACKAGED
    assert "registry.json" in names and len(names) == 1 + 4 + 2  # 4 ONNX, 2 forecaster CSVs


def test_noop_redeploy_makes_zero_mutating_calls(env: Env, first: First) -> None:
    log_before = len(commands(env.docker_log))
    again, recorder = env.deploy()
    assert again.up_to_date and again.steps == []
    assert recorder.mutating == []
    assert recorder.calls  # it did read
    assert len(commands(env.docker_log)) == log_before  # nor built anything
    assert again.endpoint_config == first.result.endpoint_config
    cli = env.cli("deploy", "--target", "sagemaker", "--json")
    assert cli.exit_code == 0, cli.output
    data = json.loads(cli.output)
    assert (data["up_to_date"], data["mutating_calls"], data["plan"]) == (True, 0, [])
    assert data["aws_calls"] > 0 and data["models"] == PACKAGED


def test_memory_change_rotates_the_endpoint_config(env: Env, first: First) -> None:
    env.set_config("\n[sagemaker]\nmemory_mb = 3072\nmax_concurrency = 7\n")
    result, recorder = env.deploy()
    old = first.result.endpoint_config
    assert result.endpoint_config != old
    assert result.model_name == first.result.model_name  # same image and model data
    assert [name for name, _ in mutating(recorder)] == [
        "sagemaker.CreateEndpointConfig",
        "sagemaker.UpdateEndpoint",
        "sagemaker.DeleteEndpointConfig",
    ]
    assert recorder.calls.count("sagemaker.DescribeEndpoint") >= 2  # read, then waited
    sm = env.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"] == result.endpoint_config
    assert endpoint["EndpointStatus"] == "InService"
    configs = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    assert configs == [result.endpoint_config]
    variant = sm.describe_endpoint_config(EndpointConfigName=result.endpoint_config)[
        "ProductionVariants"
    ][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 7}


def test_model_change_rotates_model_and_model_data(env: Env, first: First) -> None:
    """(and a run that fails half-way is finished by the next one)"""
    env.set_config('\n[sagemaker]\nmemory_mb = 3072\nmax_concurrency = 7\nmodels = ["tabular"]\n')
    failed = Recorder(fail_on="DeleteModel")
    with pytest.raises(ScarabError, match=r"delete sagemaker.model .* failed: .*InjectedFailure"):
        env.deploy(failed)
    result, rerun = env.deploy()
    assert [name for name, _ in mutating(rerun)] == ["sagemaker.DeleteModel", "s3.DeleteObject"]
    old_key = first.result.model_data_url.removeprefix(f"s3://{BUCKET}/")
    new_key = result.model_data_url.removeprefix(f"s3://{BUCKET}/")
    assert new_key != old_key and result.model_name != first.result.model_name
    # Every call the two runs made: the first's up to its failure, the second's rest.
    recorder = Recorder(requests=failed.requests[: failed.calls.index("sagemaker.DeleteModel")])
    recorder.requests += rerun.requests
    assert [name for name, _ in mutating(recorder)] == [
        "s3.PutObject",
        "s3.PutObjectTagging",
        "sagemaker.CreateModel",
        "sagemaker.CreateEndpointConfig",
        "sagemaker.UpdateEndpoint",
        "sagemaker.DeleteEndpointConfig",
        "sagemaker.DeleteModel",
        "s3.DeleteObject",
    ]
    sm = env.client("sagemaker")
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == [result.model_name]
    env_vars = sm.describe_model(ModelName=result.model_name)["PrimaryContainer"]["Environment"]
    assert env_vars["SCARAB_ENDPOINT_MODELS"] == "tabular"
    keys = [o["Key"] for o in env.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [new_key]


def test_a_model_of_another_stage_is_never_deleted(env: Env, first: First) -> None:
    """A Model named like ours but tagged for another stage: neither a deploy nor a
    destroy touches it."""
    sm = env.client("sagemaker")
    theirs = f"{ENDPOINT}-m-0123456789ab"
    role = env.client("iam").get_role(RoleName=ROLE)["Role"]["Arn"]
    sm.create_model(
        ModelName=theirs, PrimaryContainer={"Image": "elsewhere"}, ExecutionRoleArn=role,
        Tags=[{"Key": TAG_APP, "Value": "scarab"}, {"Key": TAG_STAGE, "Value": "other"}],
    )  # fmt: skip
    try:
        again, recorder = env.deploy()
        assert again.up_to_date and recorder.mutating == []
        dry = env.cli("destroy", "--target", "sagemaker", "--dry-run", "--json")
        assert dry.exit_code == 0, dry.output
        assert theirs not in dry.output
        assert theirs in [m["ModelName"] for m in sm.list_models()["Models"]]
    finally:
        sm.delete_model(ModelName=theirs)


def test_invoke_sends_the_model_and_json(env: Env, first: First) -> None:
    recorder = Recorder()
    body = b'{"features": [1, 2, 3]}'
    got = invoke_endpoint(
        load_config(env.project), project_dir=env.project, model="tabular", body=body,
        endpoint_url=env.moto.url, session=counted_session(recorder),
    )  # fmt: skip
    [(_, params)] = [(m, p) for m, p in recorder.requests if m.name == "InvokeEndpoint"]
    assert params == {
        "EndpointName": ENDPOINT,
        "Body": body,
        "ContentType": "application/json",
        "Accept": "application/json",
        "CustomAttributes": "model=tabular",
    }
    assert got.model == "tabular" and got.endpoint == ENDPOINT


def test_invoke_cli_prints_the_answer(env: Env, first: First) -> None:
    import urllib.request

    # moto answers InvokeEndpoint with what this queue says (else the text "body").
    answer = {"model": "tabular", "label": "benign", "probability": 0.12}
    results = {"results": [{"Body": json.dumps(answer), "ContentType": "application/json"}]}
    req = urllib.request.Request(
        f"{env.moto.url}/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps(results).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=10).read()
    got = env.cli(
        "invoke", "--target", "sagemaker", "--model", "tabular",
        "--data", '{"features": [9, 9]}', "--json",
    )  # fmt: skip
    assert got.exit_code == 0, got.output
    data = json.loads(got.output)
    assert data["body"] == answer and data["model"] == "tabular"
    assert data["content_type"] == "application/json"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{}"], "Missing option '--model'"),
        (["--model", "tabular"], "Missing option '--data'"),
        (["--model", "tabular", "--data", "{not json"], "--data is not JSON"),
        (["--model", "tabular", "--data", "{}", "--speed", "deep"], "--speed goes with"),
        (
            ["--model", "tabular", "--data", json.dumps("x" * 4 * 2**20)],
            f"--data is {4 * 2**20 + 2} bytes; SageMaker Serverless takes at most {4 * 2**20}",
        ),
    ],
    ids=["no-model", "no-data", "not-json", "speed", "over-4-MB"],
)
def test_invoke_refuses_bad_requests(env: Env, first: First, args: list[str], message: str) -> None:
    got = env.cli("invoke", "--target", "sagemaker", *args)
    assert got.exit_code == 2, got.output
    assert message in " ".join(got.output.split())


def test_invoke_refuses_a_model_the_endpoint_does_not_serve(env: Env, first: First) -> None:
    got = env.cli("invoke", "--target", "sagemaker", "--model", "digits", "--data", "{}")
    assert got.exit_code == 2, got.output
    assert "--model digits: the endpoint scarab-smk serves tabular" in " ".join(got.output.split())


def test_status(env: Env, first: First) -> None:
    got = env.cli("status", "--target", "sagemaker", "--json")
    assert got.exit_code == 0, got.output
    data = json.loads(got.output)
    sm = env.client("sagemaker")
    live = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert data["status"] == "InService"
    assert data["endpoint"] == ENDPOINT
    assert data["endpoint_config"] == live["EndpointConfigName"]
    assert (data["memory_mb"], data["max_concurrency"]) == (3072, 7)
    assert data["models"] == ["tabular"]
    assert data["image"] == f"{REGISTRY}/{REPOSITORY}:{first.tag}"
    text = env.cli("status", "--target", "sagemaker")
    assert text.exit_code == 0 and "InService" in text.output and "3072" in text.output


def test_destroy_dry_run_then_destroy_leaves_nothing(env: Env, first: First) -> None:
    dry = env.cli("destroy", "--target", "sagemaker", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    ops = [c["operation"] for s in json.loads(dry.output)["steps"] for c in s["calls"]]
    assert ops == [
        "DeleteEndpoint", "DeleteEndpointConfig", "DeleteModel", "DeleteObject",
        "DeleteRolePolicy", "DeleteRole", "DeleteLogGroup",
    ]  # fmt: skip
    sm = env.client("sagemaker")
    assert sm.describe_endpoint(EndpointName=ENDPOINT)  # the dry run deleted nothing

    got = env.cli("destroy", "--target", "sagemaker", "--yes")
    assert got.exit_code == 0, got.output
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_models()["Models"] == []
    assert "Contents" not in env.client("s3").list_objects_v2(Bucket=BUCKET)
    assert ROLE not in [r["RoleName"] for r in env.client("iam").list_roles()["Roles"]]
    groups = env.client("logs").describe_log_groups(logGroupNamePrefix="/aws/sagemaker")
    assert groups["logGroups"] == []
    ecr = env.client("ecr")
    assert ecr.describe_repositories(repositoryNames=[REPOSITORY])["repositories"]  # kept
    again = env.cli("destroy", "--target", "sagemaker", "--yes", "--include-images")
    assert again.exit_code == 0, again.output
    assert REPOSITORY not in [
        r["repositoryName"] for r in ecr.describe_repositories()["repositories"]
    ]
    assert not (env.project / ".scarab" / "local" / "state" / "smk.sagemaker.json").exists()
