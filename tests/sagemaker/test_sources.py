"""Which models the endpoint serves: the registry table's live versions (files fetched
from the models bucket), an unknown [sagemaker] model refused; and the waiter's reading
of DescribeEndpoint; and the embedded emulator's UpdateEndpoint."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import boto3
import pytest
from lens.predict.sources import ALIASES_VERSION
from scarab.aws import Aws
from scarab.cli import app
from scarab.config import load_config
from scarab.deploy.planner_registry import TABLE_KEY
from scarab.deploy.seeds import packaged_seeds
from scarab.deploy.waiters import endpoint_arrived, wait_for_endpoint
from scarab.emulator import start_embedded
from scarab.errors import ScarabError
from scarab.targets.sagemaker.pipeline import deploy_endpoint
from typer.testing import CliRunner

from tests.sagemaker.conftest import ACCOUNT, CONFIG, make_project
from tests.support.moto_server import MotoServer

TABLE = "scarab-smk-models"
MODELS_BUCKET = f"scarab-smk-models-{ACCOUNT}-us-east-1"


def seed_registry(project: Path, names: set[str], version: str = "2.0.0") -> None:
    """A registry holding `names` at `version` (the live one), as a deploy's seeding
    and `scarab models push` leave it."""
    ddb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST", **TABLE_KEY)
    s3.create_bucket(Bucket=MODELS_BUCKET)
    for seed in packaged_seeds(project, MODELS_BUCKET):
        if seed.name not in names:
            continue
        item = {**seed.item, "version": {"S": version}, "created_at": {"S": "2026-12-01T00:00:00Z"}}
        ddb.put_item(TableName=TABLE, Item=item)
        aliases = {"name": {"S": seed.name}, "version": {"S": ALIASES_VERSION}}
        ddb.put_item(
            TableName=TABLE, Item={**aliases, "live": {"S": version}, "revision": {"N": "1"}}
        )
        for path, _, _, key in seed.files:
            s3.put_object(Bucket=MODELS_BUCKET, Key=key, Body=Path(path).read_bytes())


@pytest.mark.emulator
def test_registry_live_versions_are_served(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "proj")
    seed_registry(project, {"tabular", "bikes-3h"})
    result = deploy_endpoint(load_config(project), project_dir=project, dry_run=True)
    assert result.models == ["bikes-3h", "tabular"]
    assert result.models_from == f"the registry table {TABLE}"
    assert result.mutating_calls == 0
    [bundle] = list((project / ".scarab" / "build" / "sagemaker").glob("*.tar.gz"))
    with tarfile.open(fileobj=io.BytesIO(bundle.read_bytes())) as tar:
        registry = json.loads(tar.extractfile("registry.json").read())  # type: ignore[union-attr]
        names = tar.getnames()
    entries = {m["name"]: m for m in registry["models"]}
    assert {e["version"] for e in entries.values()} == {"2.0.0"}  # the table's, not packaged
    assert "data_uri" not in entries["bikes-3h"]  # its data is in the archive instead
    assert entries["bikes-3h"]["data"]["path"] in names
    assert entries["tabular"]["artifact"]["path"] in names

    # A model the registry has no live version of: a usage error naming what it has.
    (project / "scarab.toml").write_text(CONFIG + '[sagemaker]\nmodels = ["digits"]\n')
    monkeypatch.chdir(project)
    got = CliRunner().invoke(app, ["plan", "--target", "sagemaker"])
    assert got.exit_code == 2, got.output
    assert (
        f"'sagemaker.models' names digits, which the registry table {TABLE} does not have a"
        " live version of; it has bikes-3h, tabular." in " ".join(got.output.split())
    )


def test_waiter_reads_describe_endpoint() -> None:
    def desc(status: str, config: str = "c-new", reason: str | None = None) -> dict[str, str]:
        d = {"EndpointName": "e", "EndpointStatus": status, "EndpointConfigName": config}
        return {**d, "FailureReason": reason} if reason else d

    assert endpoint_arrived(desc("InService"), "c-new") is True
    for busy in ("Creating", "Updating", "SystemUpdating"):
        assert endpoint_arrived(desc(busy, "c-old"), "c-new") is False
    with pytest.raises(ScarabError, match=r"endpoint e failed: no image\. SageMaker cannot update"):
        endpoint_arrived(desc("Failed", reason="no image"), "c-new")
    with pytest.raises(ScarabError, match="endpoint e is Deleting; wait until it is InService"):
        endpoint_arrived(desc("Deleting"), "c-new")
    with pytest.raises(ScarabError, match="rolled the endpoint e back to c-old instead of c-new"):
        endpoint_arrived(desc("InService", "c-old", "health check failed"), "c-new")


def test_embedded_emulator_updates_endpoints() -> None:
    """--local's moto takes UpdateEndpoint (moto itself does not implement it)."""
    emulator = start_embedded()
    try:
        kw = {"region_name": "us-east-1", "endpoint_url": emulator.url}
        kw |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        sm = boto3.client("sagemaker", **kw)
        role = boto3.client("iam", **kw).create_role(RoleName="r", AssumeRolePolicyDocument="{}")
        sm.create_model(
            ModelName="m", PrimaryContainer={"Image": "i"}, ExecutionRoleArn=role["Role"]["Arn"]
        )
        for name, memory in (("c1", 1024), ("c2", 4096)):
            variant = {"VariantName": "AllTraffic", "ModelName": "m"}
            serverless = {"MemorySizeInMB": memory, "MaxConcurrency": 1}
            sm.create_endpoint_config(
                EndpointConfigName=name,
                ProductionVariants=[{**variant, "ServerlessConfig": serverless}],
            )
        sm.create_endpoint(EndpointName="e", EndpointConfigName="c1")
        sm.update_endpoint(EndpointName="e", EndpointConfigName="c2")
        got = sm.describe_endpoint(EndpointName="e")
        assert (got["EndpointConfigName"], got["EndpointStatus"]) == ("c2", "InService")
        assert got["ProductionVariants"][0]["CurrentServerlessConfig"]["MemorySizeInMB"] == 4096
        with pytest.raises(sm.exceptions.ClientError, match="Could not find endpoint"):
            sm.update_endpoint(EndpointName="nope", EndpointConfigName="c2")

        # An endpoint that stays Updating (set in the emulator, which runs in this
        # process): the wait gives up after its timeout, with advice.
        from moto.sagemaker.models import sagemaker_backends

        sagemaker_backends[ACCOUNT]["us-east-1"].endpoints["e"].endpoint_status = "Updating"
        aws = Aws(
            "us-east-1",
            endpoint_url=emulator.url,
            session=boto3.Session(
                **{"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
            ),
        )
        with pytest.raises(ScarabError, match=r"not InService on c2 after 0s; check it"):
            wait_for_endpoint(aws, "e", "c2", timeout=0.2)
        assert aws.log.calls.count("sagemaker.DescribeEndpoint") >= 2  # it polled
    finally:
        emulator.stop()


@pytest.mark.emulator
def test_nothing_deployed(aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "proj")
    monkeypatch.chdir(project)
    runner = CliRunner()
    plan = runner.invoke(app, ["plan", "--target", "sagemaker", "--json"])
    dry = runner.invoke(app, ["deploy", "--target", "sagemaker", "--dry-run", "--json"])
    assert plan.exit_code == dry.exit_code == 0, (plan.output, dry.output)
    assert json.loads(dry.output) == json.loads(plan.output)
    text = runner.invoke(app, ["plan", "--target", "sagemaker"])
    assert text.exit_code == 0, text.output
    assert "Plan for stage smk in us-east-1 (11 changes, dry run):" in text.output
    assert "      sagemaker.CreateEndpoint\n" in text.output
    kinds = [s["resource"].split()[0] for s in json.loads(plan.output)["steps"]]
    assert kinds == [
        "ecr.repository", "ecr.image", "s3.bucket", "s3.object", "iam.role", "iam.role",
        "logs.group", "logs.group", "sagemaker.model", "sagemaker.endpoint-config",
        "sagemaker.endpoint",
    ]  # fmt: skip
    got = runner.invoke(app, ["status", "--target", "sagemaker", "--json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.output)["status"] == "NotDeployed"
    got = runner.invoke(app, ["destroy", "--target", "sagemaker", "--yes"])
    assert got.exit_code == 0, got.output
    assert "Nothing left to remove" in got.output
    got = runner.invoke(
        app, ["invoke", "--target", "sagemaker", "--model", "tabular", "--data", "{}"]
    )
    assert got.exit_code == 1, got.output
    assert "has no SageMaker endpoint scarab-smk" in " ".join(got.output.split())


@pytest.mark.emulator
def test_another_region_is_refused(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "proj")
    record = project / ".scarab" / "local" / "state" / "smk.sagemaker.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"region": "eu-west-1", "endpoint_url": aws.url}))
    monkeypatch.chdir(project)
    got = CliRunner().invoke(app, ["plan", "--target", "sagemaker"])
    assert got.exit_code == 1, got.output
    assert (
        "deployed in eu-west-1, but this run targets us-east-1. Pass --region eu-west-1"
        in " ".join(got.output.split())
    )
