"""--target fargate against the moto server: one deploy for the module, then what it
made, a no-op redeploy, keys, status, a size change and destroy, in that order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from scarab.artifacts.image import SERVER_DOCKERFILE, image_tag
from scarab.config import load_config
from scarab.errors import ScarabError
from scarab.targets.fargate.pipeline import FargateDeployResult, deploy

from tests.deploy.conftest import Recorder, counted_session
from tests.fargate.conftest import Project

ACCOUNT = "123456789012"
REGISTRY = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
NAME = "scarab-test"
REPO_URI = f"{REGISTRY}/scarab-test-server"
SECRET = "scarab-test/fargate-api-keys"


def run(project: Project) -> tuple[FargateDeployResult, Recorder]:
    recorder = Recorder()
    result = deploy(
        load_config(project.root),
        project_dir=project.root,
        endpoint_url=project.moto.url,
        session=counted_session(recorder),
    )
    return result, recorder


@pytest.fixture(scope="module")
def tag(fargate_project: Project) -> str:
    return image_tag(fargate_project.root, "x86_64", SERVER_DOCKERFILE)


@pytest.fixture(scope="module")
def planned(fargate_project: Project) -> dict[str, Any]:
    """`scarab plan --target fargate --json` before anything exists."""
    return dict(fargate_project.json("plan", "--target", "fargate"))


@pytest.fixture(scope="module")
def first(
    fargate_project: Project, planned: dict[str, Any]
) -> tuple[FargateDeployResult, Recorder]:
    return run(fargate_project)


def calls_of(plan: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["service"], c["operation"]) for s in plan["steps"] for c in s["calls"]]


FIRST_MUTATIONS = [
    "ssm.PutParameter",  # the stage lock
    "ecr.CreateRepository",
    "ecr.PutLifecyclePolicy",
    "logs.CreateLogGroup",
    "logs.PutRetentionPolicy",
    "iam.CreateRole",
    "iam.PutRolePolicy",
    "iam.CreateRole",
    "iam.PutRolePolicy",
    "secretsmanager.CreateSecret",
    "ec2.CreateSecurityGroup",
    "ec2.AuthorizeSecurityGroupIngress",
    "ecs.CreateCluster",
    "ecs.RegisterTaskDefinition",
    "ecs.CreateService",
    "ssm.DeleteParameter",
]


def test_plan_shows_the_exact_calls_without_docker(
    fargate_project: Project, planned: dict[str, Any], tag: str
) -> None:
    assert fargate_project.docker() == []  # planned before any build
    assert [(m.split(".")[0], m.split(".")[1]) for m in FIRST_MUTATIONS[1:-1]] == [
        c
        for c in calls_of(planned)
        if c not in {("ecr", "GetAuthorizationToken"), ("docker", "Push")}
    ]
    shown = [c for s in planned["steps"] for c in s["calls"]]
    push = next(c for c in shown if c["service"] == "docker")
    assert push["params"] == {"image": f"{REPO_URI}:{tag}", "dockerfile": "server.Dockerfile"}
    register = next(c for c in shown if c["operation"] == "RegisterTaskDefinition")
    assert register["params"]["containerDefinitions"][0]["image"] == f"{REPO_URI}:{tag}"
    secret = next(c for c in shown if c["operation"] == "CreateSecret")
    assert secret["params"]["SecretString"] == "<redacted>"
    service = next(c for c in shown if c["operation"] == "CreateService")
    assert service["params"]["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"] == [
        "${security_group_id}"
    ]


def test_deploy_dry_run_is_the_plan_and_changes_nothing(
    fargate_project: Project, planned: dict[str, Any]
) -> None:
    p = fargate_project
    assert p.json("deploy", "--target", "fargate", "--dry-run") == planned
    text = p.ok("plan", "--target", "fargate")
    assert f"Plan for stage test in us-east-1 ({len(planned['steps'])} changes" in text
    assert "      docker.Push" in text and "      ecs.CreateService" in text
    assert p.client("ecs").list_clusters()["clusterArns"] == []
    assert p.docker() == []


def test_first_deploy_makes_these_calls_and_builds_the_server_image(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder], tag: str
) -> None:
    result, recorder = first
    assert recorder.mutating == FIRST_MUTATIONS
    assert not result.up_to_date
    root = fargate_project.root
    assert fargate_project.docker() == [
        ["info", "--format", "{{.ServerVersion}}"],
        [
            "build", "--platform", "linux/amd64", "--provenance=false",
            "--file", str(root / "lambda" / "server.Dockerfile"),
            "--tag", f"scarab-server:{tag}", str(root / "lambda"),
        ],
        ["login", "--username", "AWS", "--password-stdin", REGISTRY],
        ["tag", f"scarab-server:{tag}", f"{REPO_URI}:{tag}"],
        ["push", f"{REPO_URI}:{tag}"],
    ]  # fmt: skip
    images = fargate_project.client("ecr").describe_images(repositoryName=f"{NAME}-server")
    assert [i["imageTags"] for i in images["imageDetails"]] == [[tag]]
    # The repository keeps only the last [images] keep_last images (default 10).
    rule = json.loads(
        fargate_project.client("ecr").get_lifecycle_policy(repositoryName=f"{NAME}-server")[
            "lifecyclePolicyText"
        ]
    )["rules"][0]
    assert rule["selection"]["countType"] == "imageCountMoreThan"
    assert rule["selection"]["countNumber"] == 10 and rule["action"] == {"type": "expire"}


def test_the_task_definition(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder], tag: str
) -> None:
    ecs = fargate_project.client("ecs")
    td = ecs.describe_task_definition(taskDefinition=f"{NAME}-server")["taskDefinition"]
    assert td["revision"] == 1 and first[0].task_definition_arn == td["taskDefinitionArn"]
    assert td["networkMode"] == "awsvpc"
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert (td["cpu"], td["memory"]) == ("256", "512")
    assert td["executionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{NAME}-ecs-exec"
    assert td["taskRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{NAME}-ecs-task"
    [c] = td["containerDefinitions"]
    assert c["image"] == f"{REPO_URI}:{tag}"
    assert c["portMappings"] == [{"containerPort": 8080, "protocol": "tcp"}]
    assert c["entryPoint"] == ["python", "-m", "lens.server"]
    assert c["command"] == ["--host", "0.0.0.0", "--port", "8080"]
    assert {e["name"]: e["value"] for e in c["environment"]} == {
        "ARTIFACTS_BUCKET": f"{NAME}-models-{ACCOUNT}-us-east-1",
        "MODEL_REGISTRY_TABLE": f"{NAME}-models",
        "EXECUTION_MODE": "standalone",
        "SCARAB_API_KEYS_SECRET": SECRET,
    }
    assert c["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": f"/ecs/{NAME}",
            "awslogs-region": "us-east-1",
            "awslogs-stream-prefix": "server",
        },
    }
    check = c["healthCheck"]
    assert check["command"][0] == "CMD-SHELL"
    assert "urllib.request.urlopen('http://127.0.0.1:8080/health'" in check["command"][1]
    assert check["command"][1].startswith('python -c "') and check["command"][1].endswith(
        "|| exit 1"
    )
    logs = fargate_project.client("logs").describe_log_groups(logGroupNamePrefix=f"/ecs/{NAME}")
    [group] = logs["logGroups"]
    assert group["logGroupName"] == f"/ecs/{NAME}" and group["retentionInDays"] == 14


def test_the_security_group_admits_the_port_from_allowed_cidrs_only(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    ec2 = fargate_project.client("ec2")
    [sg] = ec2.describe_security_groups(GroupIds=[first[0].security_group_id])["SecurityGroups"]
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
    assert sg["VpcId"] == default_vpc["Vpcs"][0]["VpcId"]
    assert sg["GroupName"] == f"{NAME}-fargate"
    rules = [
        (p["IpProtocol"], p["FromPort"], p["ToPort"], r)
        for p in sg["IpPermissions"]
        for r in [x["CidrIp"] for x in p["IpRanges"]] + [x["CidrIpv6"] for x in p["Ipv6Ranges"]]
    ]
    assert sorted(rules) == [
        ("tcp", 8080, 8080, "2001:db8::/32"),
        ("tcp", 8080, 8080, "203.0.113.0/24"),
    ]
    assert {"Key": "scarab:stage", "Value": "test"} in sg["Tags"]


def test_the_service_runs_in_the_default_subnets_with_a_public_ip(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    ec2 = fargate_project.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    default = ec2.describe_subnets(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
            {"Name": "default-for-az", "Values": ["true"]},
        ]
    )["Subnets"]
    ecs = fargate_project.client("ecs")
    [svc] = ecs.describe_services(cluster=NAME, services=[NAME])["services"]
    assert svc["launchType"] == "FARGATE" and svc["desiredCount"] == 2
    assert svc["loadBalancers"] == []
    assert svc["taskDefinition"] == first[0].task_definition_arn
    net = svc["networkConfiguration"]["awsvpcConfiguration"]
    assert sorted(net["subnets"]) == sorted(s["SubnetId"] for s in default)
    assert net["securityGroups"] == [first[0].security_group_id]
    assert net["assignPublicIp"] == "ENABLED"
    [cluster] = ecs.describe_clusters(clusters=[NAME], include=["TAGS"])["clusters"]
    assert cluster["status"] == "ACTIVE"


def _policy(iam: Any, role: str) -> tuple[dict[str, Any], dict[str, Any]]:
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    doc = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return trust, doc


ECS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def test_the_roles_grant_exactly_the_stages_resources(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    iam = fargate_project.client("iam")
    trust, task = _policy(iam, f"{NAME}-ecs-task")
    assert trust == ECS_TRUST
    bucket = f"arn:aws:s3:::{NAME}-models-{ACCOUNT}-us-east-1"
    assert task["Statement"] == [
        {
            "Sid": "ReadRegistry",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"],
            "Resource": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/{NAME}-models",
        },
        {
            "Sid": "ReadArtifacts",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [f"{bucket}/models/*", f"{bucket}/data/*"],
        },
        {
            "Sid": "ReadApiKeys",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{SECRET}-??????",
        },
    ]
    # The pattern matches the secret's real ARN (its name, '-', six characters).
    arn = fargate_project.client("secretsmanager").describe_secret(SecretId=SECRET)["ARN"]
    assert arn.startswith(task["Statement"][2]["Resource"][:-6]) and len(arn) == len(
        task["Statement"][2]["Resource"]
    )
    trust, execution = _policy(iam, f"{NAME}-ecs-exec")
    assert trust == ECS_TRUST
    assert execution["Statement"] == [
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken",
         "Resource": "*"},
        {
            "Sid": "PullServerImage",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{NAME}-server",
        },
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/ecs/{NAME}:*",
        },
    ]  # fmt: skip


def test_the_key_secret_holds_one_key_and_it_is_nowhere_else(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    sm = fargate_project.client("secretsmanager")
    ring = json.loads(sm.get_secret_value(SecretId=SECRET)["SecretString"])
    [key] = ring["keys"]
    assert key["name"] == f"{NAME}-key-1" and key["enabled"] is True
    assert len(key["value"]) >= 40 and key["id"].startswith("k-")
    record = fargate_project.root / ".scarab" / "local" / "state" / "test.fargate.json"
    text = record.read_text()
    assert key["value"] not in text
    assert json.loads(text)["task_definition_arn"] == first[0].task_definition_arn
    for _, params in first[1].requests:  # only CreateSecret carries it
        if "SecretString" not in params:
            assert key["value"] not in json.dumps(params, default=str)


def test_a_redeploy_with_nothing_changed_makes_no_mutating_call(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    result, recorder = run(fargate_project)
    assert result.up_to_date and result.plan == []
    assert recorder.mutating == []
    assert result.task_definition_arn == first[0].task_definition_arn
    # The CLI says so too, and --show-key prints the first key.
    data = fargate_project.json("deploy", "--target", "fargate", "--show-key")
    assert data["up_to_date"] is True and data["mutating_calls"] == 0
    sm = fargate_project.client("secretsmanager")
    ring = json.loads(sm.get_secret_value(SecretId=SECRET)["SecretString"])
    assert data["api_key"] == ring["keys"][0]["value"]
    plain = fargate_project.ok("deploy", "--target", "fargate")
    assert "up to date" in plain and ring["keys"][0]["value"] not in plain


def _ring(project: Project) -> list[dict[str, Any]]:
    sm = project.client("secretsmanager")
    return list(json.loads(sm.get_secret_value(SecretId=SECRET)["SecretString"])["keys"])


def test_warnings_and_force_unlock_on_an_unchanged_stage(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    p = fargate_project
    registry = f"the model registry table {NAME}-models does not exist yet"
    assert any(registry in w for w in first[0].warnings)
    assert not any("allowed_cidrs is empty" in w for w in first[0].warnings)
    config = (p.root / "scarab.toml").read_text()
    p.set_config(config.replace('allowed_cidrs = ["203.0.113.0/24", "2001:db8::/32"]', ""))
    open_to_nobody = deploy(
        load_config(p.root), project_dir=p.root, endpoint_url=p.moto.url, dry_run=True
    )
    p.set_config(config)
    assert any("nobody can reach port 8080" in w for w in open_to_nobody.warnings)
    assert [s.resource for s in open_to_nobody.plan] == [
        f"ec2.security_group {NAME}-fargate ingress"
    ]
    # A lock left by a dead run on another machine: --force-unlock removes it, even with
    # nothing to deploy.
    ssm = p.client("ssm")
    ssm.put_parameter(Name="/scarab/scarab/test/lock", Value="{}", Type="String")
    data = p.json("deploy", "--target", "fargate", "--force-unlock")
    assert data["up_to_date"] is True
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name="/scarab/scarab/test/lock")


def test_keys_rotate_overlaps_and_revoke_removes(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    p = fargate_project
    [old] = _ring(p)
    listed = p.json("keys", "list", "--target", "fargate")
    assert listed == [{k: old[k] for k in ("id", "name", "enabled", "created")}]
    assert old["value"] not in p.ok("keys", "list", "--target", "fargate")
    rotated = p.json("keys", "rotate", "--target", "fargate")
    assert rotated["name"] == f"{NAME}-key-2"
    # Both keys are in the ring: clients on the old one keep working.
    assert [k["value"] for k in _ring(p)] == [old["value"], rotated["value"]]
    from lens.server.keys import parse_keys  # what the server accepts

    sm = p.client("secretsmanager")
    ring = parse_keys(sm.get_secret_value(SecretId=SECRET)["SecretString"])
    assert ring.accepts(old["value"]) and ring.accepts(rotated["value"])
    shown = p.json("keys", "list", "--target", "fargate", "--show-values")
    assert [k["value"] for k in shown] == [old["value"], rotated["value"]]
    created = p.json("keys", "create", "ci-client", "--target", "fargate")
    assert created["name"] == "ci-client" and created["value"] in [k["value"] for k in _ring(p)]
    dup = p.cli("keys", "create", "ci-client", "--target", "fargate")
    assert dup.exit_code == 2 and "already exists" in dup.output
    assert p.ok("keys", "revoke", old["id"], "--target", "fargate").startswith(
        f"Revoked {old['id']}"
    )
    p.ok("keys", "revoke", "ci-client", "--target", "fargate")  # by name works too
    assert [k["id"] for k in _ring(p)] == [rotated["id"]]
    ring = parse_keys(sm.get_secret_value(SecretId=SECRET)["SecretString"])
    assert not ring.accepts(old["value"]) and ring.accepts(rotated["value"])
    last = p.cli("keys", "revoke", rotated["id"], "--target", "fargate")
    assert last.exit_code == 2 and "last key" in last.output and "rotate" in last.output
    assert rotated["value"] not in last.output
    unknown = p.cli("keys", "revoke", "k-nope", "--target", "fargate")
    assert unknown.exit_code == 2 and "is not a key" in unknown.output
    assert [k["id"] for k in _ring(p)] == [rotated["id"]]


def _simulate_task(project: Project, public: bool) -> str:
    """Start a task in the service's group and network, as ECS does for the service
    (moto's CreateService starts none, and its RunTask needs container memory), and give
    it a public IP on its interface when `public` (what Fargate's assignPublicIp does)."""
    ecs = project.client("ecs")
    [svc] = ecs.describe_services(cluster=NAME, services=[NAME])["services"]
    live = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    container = {**live["containerDefinitions"][0], "memory": 512}
    sim = ecs.register_task_definition(
        family="sim-of-the-service", containerDefinitions=[container], networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
    )["taskDefinition"]  # fmt: skip
    task = ecs.run_task(
        cluster=NAME, taskDefinition=sim["taskDefinitionArn"], launchType="FARGATE",
        networkConfiguration=svc["networkConfiguration"], group=f"service:{NAME}",
    )["tasks"][0]  # fmt: skip
    eni = next(
        d["value"] for d in task["attachments"][0]["details"] if d["name"] == "networkInterfaceId"
    )
    if public:
        ec2 = project.client("ec2")
        alloc = ec2.allocate_address(Domain="vpc")
        ec2.associate_address(AllocationId=alloc["AllocationId"], NetworkInterfaceId=eni)
        return str(alloc["PublicIp"])
    return str(task["taskArn"])


def test_status_lists_the_running_tasks_and_their_addresses(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    p = fargate_project
    ip = _simulate_task(p, public=True)
    starting = _simulate_task(p, public=False)
    data = p.json("status", "--target", "fargate")
    assert data["cluster"] == {"name": NAME, "active": True}
    assert data["service"]["task_definition"] == first[0].task_definition_arn
    assert data["service"]["revision"] == 1 and data["service"]["desired_count"] == 2
    by_arn = {t["task_arn"]: t for t in data["tasks"]}
    assert len(by_arn) == 2
    assert by_arn[starting]["public_ip"] is None and by_arn[starting]["url"] is None
    [public] = [t for arn, t in by_arn.items() if arn != starting]
    assert public["public_ip"] == ip and public["url"] == f"http://{ip}:8080"
    text = p.ok("status", "--target", "fargate")
    assert f"http://{ip}:8080" in text and "no public IP yet" in text
    assert f"{first[0].task_definition_arn} (revision 1)" in text


def test_another_region_than_the_records_is_refused(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    for command in (("plan",), ("status",), ("destroy", "--yes")):
        got = fargate_project.cli(*command, "--target", "fargate", "--region", "eu-west-1")
        assert got.exit_code == 1, got.output
        assert "deployed in us-east-1, but this run targets eu-west-1" in got.output
    assert (
        fargate_project.client("ecs").describe_clusters(clusters=[NAME])["clusters"][0]["status"]
        == "ACTIVE"
    )


def test_a_cpu_change_registers_a_new_revision_and_updates_the_service(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    p = fargate_project
    config = (p.root / "scarab.toml").read_text()
    p.set_config(config.replace("cpu = 256\nmemory = 512", "cpu = 512\nmemory = 1024"))
    plan = p.json("plan", "--target", "fargate")
    assert calls_of(plan) == [("ecs", "RegisterTaskDefinition"), ("ecs", "UpdateService")]
    result, recorder = run(p)
    assert recorder.mutating == [
        "ssm.PutParameter", "ecs.RegisterTaskDefinition", "ecs.UpdateService",
        "ssm.DeleteParameter",
    ]  # fmt: skip
    assert result.task_definition_arn and result.task_definition_arn.endswith(f"{NAME}-server:2")
    ecs = p.client("ecs")
    [svc] = ecs.describe_services(cluster=NAME, services=[NAME])["services"]
    assert svc["taskDefinition"] == result.task_definition_arn
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    assert (td["cpu"], td["memory"]) == ("512", "1024")
    again, recorder = run(p)
    assert again.up_to_date and recorder.mutating == []


def test_a_port_and_count_change_plans_the_group_the_revision_and_the_service(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    p = fargate_project
    config = (p.root / "scarab.toml").read_text()
    p.set_config(config.replace("desired_count = 2", "desired_count = 3\nport = 9090"))
    plan = p.json("plan", "--target", "fargate")
    p.set_config(config)
    assert calls_of(plan) == [
        ("ec2", "RevokeSecurityGroupIngress"), ("ec2", "AuthorizeSecurityGroupIngress"),
        ("ecs", "RegisterTaskDefinition"), ("ecs", "UpdateService"),
    ]  # fmt: skip
    steps = {s["resource"] + " " + s["action"]: s for s in plan["steps"]}
    revoke = steps[f"ec2.security_group {NAME}-fargate ingress delete"]["calls"][0]["params"]
    assert {perm["FromPort"] for perm in revoke["IpPermissions"]} == {8080}
    grant = steps[f"ec2.security_group {NAME}-fargate ingress create"]["calls"][0]["params"]
    assert {(perm["FromPort"], perm["ToPort"]) for perm in grant["IpPermissions"]} == {(9090, 9090)}
    register = steps[f"ecs.task_definition {NAME}-server create"]
    assert (
        "container command" in register["reason"] and "container portMappings" in register["reason"]
    )
    container = register["calls"][0]["params"]["containerDefinitions"][0]
    assert container["portMappings"] == [{"containerPort": 9090, "protocol": "tcp"}]
    assert "127.0.0.1:9090/health" in container["healthCheck"]["command"][1]
    update = steps[f"ecs.service {NAME} update"]
    assert "desired count 2 -> 3" in update["reason"]
    assert update["calls"][0]["params"]["taskDefinition"] == "${task_definition_arn}"


def test_changing_allowed_cidrs_revokes_and_authorizes_only_the_difference(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    p = fargate_project
    config = (p.root / "scarab.toml").read_text()
    p.set_config(config.replace('"2001:db8::/32"', '"198.51.100.0/24"'))
    _, recorder = run(p)
    assert recorder.mutating == [
        "ssm.PutParameter", "ec2.RevokeSecurityGroupIngress",
        "ec2.AuthorizeSecurityGroupIngress", "ssm.DeleteParameter",
    ]  # fmt: skip
    [sg] = p.client("ec2").describe_security_groups(GroupIds=[first[0].security_group_id])[
        "SecurityGroups"
    ]
    cidrs = sorted(r["CidrIp"] for perm in sg["IpPermissions"] for r in perm["IpRanges"])
    assert cidrs == ["198.51.100.0/24", "203.0.113.0/24"]
    assert all(perm["Ipv6Ranges"] == [] for perm in sg["IpPermissions"])


def test_subnets_must_exist_and_share_one_vpc(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    p = fargate_project
    ec2 = p.client("ec2")
    config = (p.root / "scarab.toml").read_text()
    p.set_config(config + 'subnets = ["subnet-0123456789abcdef0"]\n')
    missing = p.cli("plan", "--target", "fargate")
    assert missing.exit_code == 2 and "[fargate] subnets" in missing.output
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    default = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    mixed = [other, default["Subnets"][0]["SubnetId"]]
    p.set_config(config + f"subnets = {json.dumps(mixed)}\n")
    two = p.cli("plan", "--target", "fargate")
    assert two.exit_code == 2 and "a service's subnets must all be in one VPC" in two.output
    p.set_config(config + f"subnets = {json.dumps([other])}\n")
    moved = p.cli("plan", "--target", "fargate")
    assert moved.exit_code == 1 and "run 'scarab destroy --target fargate' first" in moved.output
    p.set_config(config)


def test_destroy_dry_run_then_destroy_leaves_nothing(
    fargate_project: Project, first: tuple[FargateDeployResult, Recorder]
) -> None:
    p = fargate_project
    planned = p.json("destroy", "--target", "fargate", "--dry-run")
    assert [s["resource"] for s in planned["steps"]] == [
        f"ecs.service {NAME}",
        f"ecs.task_definition {NAME}-server:1",
        f"ecs.task_definition {NAME}-server:2",
        f"ecs.cluster {NAME}",
        f"ec2.security_group {NAME}-fargate",
        f"iam.role {NAME}-ecs-exec",
        f"iam.role {NAME}-ecs-task",
        f"logs.group /ecs/{NAME}",
        f"secretsmanager.secret {SECRET}",
    ]
    assert p.client("ecs").describe_clusters(clusters=[NAME])["clusters"][0]["status"] == "ACTIVE"
    out = p.ok("destroy", "--target", "fargate", "--yes")
    assert "9 resources removed" in out
    assert f"kept ecr.repository {NAME}-server" in out
    ecs = p.client("ecs")
    assert [
        s["status"] for s in ecs.describe_services(cluster=NAME, services=[NAME])["services"]
    ] == ["INACTIVE"]
    assert ecs.describe_clusters(clusters=[NAME])["clusters"][0]["status"] == "INACTIVE"
    assert (
        ecs.list_task_definitions(familyPrefix=f"{NAME}-server", status="ACTIVE")[
            "taskDefinitionArns"
        ]
        == []
    )
    ec2 = p.client("ec2")
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"{NAME}-fargate"]}]
    )["SecurityGroups"]
    assert groups == []
    iam = p.client("iam")
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert f"{NAME}-ecs-exec" not in roles and f"{NAME}-ecs-task" not in roles
    logs = p.client("logs").describe_log_groups(logGroupNamePrefix=f"/ecs/{NAME}")
    assert logs["logGroups"] == []
    names = [s["Name"] for s in p.client("secretsmanager").list_secrets()["SecretList"]]
    assert SECRET not in names
    assert not (p.root / ".scarab" / "local" / "state" / "test.fargate.json").exists()
    # The images stay unless asked; a second run removes the repository with them.
    p.client("ecr").describe_repositories(repositoryNames=[f"{NAME}-server"])
    out = p.ok("destroy", "--target", "fargate", "--yes", "--include-images")
    assert "1 resources removed" in out and "kept" not in out
    assert p.client("ecr").describe_repositories()["repositories"] == []
    assert "Nothing left to remove" in p.ok("destroy", "--target", "fargate", "--yes")
    status = p.json("status", "--target", "fargate")
    assert status["service"] is None and status["cluster"]["active"] is False
    keys = p.cli("keys", "list", "--target", "fargate")
    assert keys.exit_code == 1 and "Run 'scarab deploy --target fargate' first" in keys.output
    assert "not deployed" in p.ok("status", "--target", "fargate")


def test_a_deploy_that_fails_half_way_is_finished_by_the_next_run(
    fargate_project: Project,
) -> None:
    """After destroy: deploy again, failing at CreateService; the re-run makes only the
    call left (the revision it registered is reused) and the lock is released."""
    p = fargate_project
    recorder = Recorder(fail_on="CreateService")
    with pytest.raises(ScarabError) as failed:
        deploy(
            load_config(p.root), project_dir=p.root, endpoint_url=p.moto.url,
            session=counted_session(recorder),
        )  # fmt: skip
    assert "create ecs.service scarab-test failed" in str(failed.value)
    assert "run the same command again" in str(failed.value)
    with pytest.raises(p.client("ssm").exceptions.ParameterNotFound):
        p.client("ssm").get_parameter(Name="/scarab/scarab/test/lock")
    result, recorder = run(p)
    assert recorder.mutating == ["ssm.PutParameter", "ecs.CreateService", "ssm.DeleteParameter"]
    [svc] = p.client("ecs").describe_services(cluster=NAME, services=[NAME])["services"]
    assert svc["status"] == "ACTIVE" and svc["taskDefinition"] == result.task_definition_arn
