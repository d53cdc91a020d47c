"""`scarab models`: push, list, promote, rollback, split, rm, push-data, through the real
CLI against the moto server, and the models function reading what the CLI wrote.

The registry table and bucket are created by `registry` exactly as BRIEF12 describes
(what `scarab deploy` creates); pipelines are trained here, saved with joblib or pickle,
pushed, and the function's answers compared with the estimator's.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import joblib
import numpy as np
import pytest
from lens.predict import loader, sources
from scarab.cli import app
from scarab.config import load_config
from scarab.deploy.planner_registry import TABLE_KEY
from scarab.errors import ScarabError
from scarab.models.registry import CONFLICT, open_registry, update_aliases
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner, Result

from tests.predict import conftest as predict_fixtures
from tests.predict.test_registry_table import call
from tests.support.moto_server import MotoServer

# The model store with a private cache dir (the models function tests' fixture).
cache_dir = predict_fixtures.cache_dir

pytestmark = [
    pytest.mark.emulator,
    # named(): the estimators carry feature names; the tests predict on plain arrays.
    pytest.mark.filterwarnings("ignore:X does not have valid feature names"),
]

ACCOUNT = "123456789012"  # moto's
TABLE = "scarab-test-models"  # <app>-<stage>-models of the test project
BUCKET = f"scarab-test-models-{ACCOUNT}-us-east-1"
FEATURES = ["age", "income", "tenure", "visits"]


@dataclass
class Stage:
    """The deployed stage's registry table and artifacts bucket, and the CLI on it."""

    project: Path
    url: str

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--endpoint-url", self.url])

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return str(result.output)

    def refused(self, *args: str, code: int = 2) -> str:
        """The command's message (on one line) when it refuses with exit `code`."""
        result = self.run(*args)
        assert result.exit_code == code, result.output
        assert isinstance(result.exception, SystemExit), result.exception  # no traceback
        assert "Traceback" not in result.output
        return " ".join(str(result.output).split())  # the console wraps long lines

    def item(self, name: str, version: str) -> dict[str, Any] | None:
        got = boto3.client("dynamodb").get_item(
            TableName=TABLE, Key={"name": {"S": name}, "version": {"S": version}}
        )
        item: dict[str, Any] | None = got.get("Item")
        return item

    def aliases(self, name: str) -> dict[str, Any] | None:
        return self.item(name, sources.ALIASES_VERSION)

    def objects(self) -> list[str]:
        got = boto3.client("s3").list_objects_v2(Bucket=BUCKET)
        return sorted(o["Key"] for o in got.get("Contents", []))

    def items(self) -> list[dict[str, Any]]:
        return list(boto3.client("dynamodb").scan(TableName=TABLE)["Items"])


def create_registry() -> None:
    """The registry table and artifacts bucket as BRIEF12 fixes them (deploy's job: swap
    this for run_deploy() once deploy creates them)."""
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=TABLE,
        **TABLE_KEY,  # the key schema deploy gives the registry table
        BillingMode="PAY_PER_REQUEST",
    )
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(
        Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}, ExpectedBucketOwner=ACCOUNT
    )
    s3.put_public_access_block(
        Bucket=BUCKET,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )


@pytest.fixture
def undeployed(aws: MotoServer, project: Path, monkeypatch: pytest.MonkeyPatch) -> Stage:
    monkeypatch.chdir(project)
    return Stage(project, aws.url)


@pytest.fixture
def stage(undeployed: Stage) -> Stage:
    create_registry()
    return undeployed


@pytest.fixture
def function(stage: Stage, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The models function configured as deploy configures it, reading the registry."""
    monkeypatch.setenv(sources.TABLE_ENV, TABLE)
    monkeypatch.setenv(loader.BUCKET_ENV, BUCKET)
    sources.reset()
    loader.reset()
    yield
    sources.reset()
    loader.reset()


def fresh_view() -> None:
    """The next request re-reads the table (as after the TTL)."""
    sources.reset()


# -- models trained here ------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = make_classification(
        n_samples=300, n_features=len(FEATURES), n_informative=3, n_redundant=0, random_state=7
    )
    _, target = make_regression(n_samples=300, n_features=len(FEATURES), random_state=7)
    return x * 10 + 50, y, target


def classifier(data: tuple[np.ndarray, ...], c: float = 1.0) -> Any:
    x, y, _ = data
    return make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(x, y)


def save(tmp_path: Path, filename: str, obj: Any) -> Path:
    path = tmp_path / filename
    if filename.endswith(".joblib"):
        joblib.dump(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj))
    return path


def named(estimator: Any, names: list[str]) -> Any:
    """What fitting on a pandas DataFrame leaves (pandas is not installed here)."""
    estimator.steps[0][1].feature_names_in_ = np.array(names, dtype=object)
    return estimator


class Doubler(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A custom step skl2onnx has no converter for."""

    def fit(self, x: Any, y: Any = None) -> Doubler:
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, x: Any) -> Any:
        return x * 2


# -- push -------------------------------------------------------------------------------------


def test_a_pushed_pipeline_answers_like_the_estimator(
    stage: Stage, function: None, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    model = named(classifier(data), FEATURES)
    path = save(tmp_path, "churn.joblib", model)
    output = stage.ok(
        "models", "push", str(path), "--name", "churn", "--version", "1",
        "--description", "churn risk", "--promote",
    )  # fmt: skip
    assert "Converted scikit-learn Pipeline(StandardScaler, LogisticRegression) to ONNX" in output
    assert "largest probability difference" in output and "over 200 sample rows" in output
    assert "churn 1 is live." in output

    item = stage.item("churn", "1")
    assert item is not None
    (key,) = stage.objects()
    blob = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    digest = hashlib.sha256(blob).hexdigest()
    assert key == f"models/churn/{digest}.onnx"
    assert set(item) == {
        "name", "version", "kind", "description", "input_schema", "labels", "metrics",
        "artifact_uri", "sha256", "created_at", "source",
    }  # fmt: skip
    assert item["kind"] == {"S": "tabular-classifier"}
    assert item["description"] == {"S": "churn risk"}
    assert item["labels"] == {"L": [{"S": "0"}, {"S": "1"}]}
    assert item["metrics"] == {"S": "{}"}
    assert item["artifact_uri"] == {"S": f"s3://{BUCKET}/{key}"}
    assert item["sha256"] == {"S": digest}
    assert item["source"] == {"S": "push"}
    assert len(item["created_at"]["S"]) == 20 and item["created_at"]["S"].endswith("Z")
    schema = json.loads(item["input_schema"]["S"])
    assert schema["x-feature-order"] == FEATURES
    assert list(schema["properties"]["features"]["properties"]) == FEATURES
    assert stage.aliases("churn") == {
        "name": {"S": "churn"},
        "version": {"S": "~aliases"},
        "live": {"S": "1"},
        "history": {"L": []},
        "revision": {"N": "1"},
    }

    x = data[0]
    expected = model.predict_proba(x[:25])[:, 1]
    for i in range(25):
        row = {name: float(v) for name, v in zip(FEATURES, x[i], strict=True)}
        status, body = call("POST", "/predict/churn", {"features": row})
        assert status == 200, body
        assert body["probability"] == pytest.approx(expected[i], abs=1e-5)
        assert body["label"] == str(model.predict(x[i : i + 1])[0])
        assert body["model_version"] == "1" and list(body["features_used"]) == FEATURES


def test_a_pickled_regressor_and_an_onnx_file(
    stage: Stage, function: None, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    x, _, target = data
    regressor = make_pipeline(StandardScaler(), Ridge(alpha=0.5)).fit(x, target)
    path = save(tmp_path, "spend.pkl", regressor)
    output = stage.ok("models", "push", str(path), "--name", "spend", "--version", "2024.1")
    assert "largest relative value difference" in output
    item = stage.item("spend", "2024.1")
    assert item is not None and item["kind"] == {"S": "tabular-regressor"}
    assert item["labels"] == {"L": []}
    features = [f"f{i}" for i in range(len(FEATURES))]  # no feature_names_in_
    assert json.loads(item["input_schema"]["S"])["x-feature-order"] == features
    assert stage.aliases("spend") is None, "not promoted"
    stage.ok("models", "promote", "spend", "2024.1")
    fresh_view()
    for i in range(10):
        status, body = call("POST", "/predict/spend", {"features": [float(v) for v in x[i]]})
        assert status == 200, body
        assert body["value"] == pytest.approx(float(regressor.predict(x[i : i + 1])[0]), rel=1e-4)

    # The ONNX that was uploaded, pushed back as a file: kind from its outputs, labels
    # given, metrics recorded.
    onnx_file = tmp_path / "churn.onnx"
    model = classifier(data)
    joblib.dump(model, tmp_path / "c.joblib")
    stage.ok("models", "push", str(tmp_path / "c.joblib"), "--name", "tmp", "--version", "1")
    tmp_item = stage.item("tmp", "1")
    assert tmp_item is not None
    bucket_key = tmp_item["artifact_uri"]["S"].removeprefix(f"s3://{BUCKET}/")
    onnx_file.write_bytes(
        boto3.client("s3").get_object(Bucket=BUCKET, Key=bucket_key)["Body"].read()
    )
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"accuracy": 0.91, "auc": 0.95}))
    output = stage.ok(
        "models", "push", str(onnx_file), "--name", "churn", "--version", "7",
        "--labels", "stay,leave", "--metrics", str(metrics), "--promote",
    )  # fmt: skip
    assert "Converted" not in output and "churn 7 is live." in output
    item = stage.item("churn", "7")
    assert item is not None
    assert item["kind"] == {"S": "tabular-classifier"}
    assert item["labels"] == {"L": [{"S": "stay"}, {"S": "leave"}]}
    assert json.loads(item["metrics"]["S"]) == {"accuracy": 0.91, "auc": 0.95}
    fresh_view()
    status, body = call("POST", "/predict/churn", {"features": [float(v) for v in x[0]]})
    assert status == 200 and body["label"] in ("stay", "leave")
    assert body["probability"] == pytest.approx(model.predict_proba(x[:1])[0, 1], abs=1e-5)
    refused = stage.refused(
        "models", "push", str(onnx_file), "--name", "churn", "--version", "8", "--labels", "a,b,c"
    )
    assert "gives 2 class probabilities but there are 3 labels" in refused


def test_refused_files_push_nothing(
    stage: Stage, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    x, y, _ = data
    text = tmp_path / "notes.txt"
    text.write_text("this is not a model\n")
    cases = [
        (text, "is not a model: neither ONNX nor a scikit-learn estimator"),
        (save(tmp_path, "d.pkl", {"weights": [1, 2, 3]}), "holds a dict, not a scikit-learn"),
        (
            save(
                tmp_path, "custom.joblib", make_pipeline(Doubler(), LogisticRegression()).fit(x, y)
            ),
            "skl2onnx cannot convert step 'doubler' (tests.deploy.test_models_cli.Doubler)",
        ),
        (save(tmp_path, "unfit.pkl", LogisticRegression()), "is not fitted"),
        (save(tmp_path, "scaler.pkl", StandardScaler().fit(x)), "neither a classifier nor"),
    ]
    for path, message in cases:
        output = stage.refused("models", "push", str(path), "--name", "m", "--version", "1")
        assert message in output, output
    model = save(tmp_path, "m.joblib", classifier(data))
    usage = [
        (["--name", "Bad Name"], "a model name is 1-64 lowercase"),
        (["--version", "~aliases"], "a version is 1-64 letters"),
        (["--kind", "tabular-regressor"], "is a tabular-classifier, not a tabular-regressor"),
        (["--kind", "llm"], "--kind 'llm': use one of"),
        (["--labels", "a,b,c"], "has 2 classes (0, 1) but --labels names 3"),
    ]
    for args, message in usage:
        named_args = ["--name", "m", "--version", "1", *args]  # the later option wins
        output = stage.refused("models", "push", str(model), *named_args)
        assert message in output, output
    assert stage.items() == [] and stage.objects() == []


def test_push_help_says_unpickling_runs_code() -> None:
    result = CliRunner().invoke(app, ["models", "push", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "unpickling runs code from the file: push only files you trust" in text
    assert "nothing is ever unpickled from S3" in text


def test_same_bytes_is_a_no_op_and_other_bytes_are_refused(
    stage: Stage, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    path = save(tmp_path, "m.joblib", classifier(data))
    stage.ok("models", "push", str(path), "--name", "churn", "--version", "1")
    before = stage.item("churn", "1")
    again = stage.ok("models", "push", str(path), "--name", "churn", "--version", "1")
    assert "churn 1 is already pushed with these bytes; nothing changed." in again
    assert stage.item("churn", "1") == before, "created_at and every attribute unchanged"
    versions = boto3.client("s3").list_object_versions(Bucket=BUCKET)["Versions"]
    assert len(versions) == 1, "not uploaded again"
    other = save(tmp_path, "other.joblib", classifier(data, c=0.01))
    output = stage.refused("models", "push", str(other), "--name", "churn", "--version", "1")
    assert "already has a version 1 with other bytes" in output
    assert stage.item("churn", "1") == before and len(stage.objects()) == 1


def test_a_push_before_any_deploy_says_to_deploy(
    undeployed: Stage, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    path = save(tmp_path, "m.joblib", classifier(data))
    output = undeployed.refused(
        "models", "push", str(path), "--name", "m", "--version", "1", code=1
    )
    assert "no model registry yet" in output and "Run 'scarab deploy' first." in output
    output = undeployed.refused("models", "list", code=1)
    assert "Run 'scarab deploy' first." in output
    boto3.client("dynamodb").create_table(  # a table, but no bucket yet
        TableName=TABLE,
        **TABLE_KEY,  # the key schema deploy gives the registry table
        BillingMode="PAY_PER_REQUEST",
    )
    output = undeployed.refused(
        "models", "push", str(path), "--name", "m", "--version", "1", code=1
    )
    assert "Run 'scarab deploy' first." in output
    assert boto3.client("dynamodb").scan(TableName=TABLE)["Items"] == []


# -- aliases ----------------------------------------------------------------------------------


def _push_three(stage: Stage, data: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    for version, c in (("1", 1.0), ("2", 0.1), ("3", 0.01)):
        path = save(tmp_path, f"m{version}.joblib", classifier(data, c))
        stage.ok("models", "push", str(path), "--name", "churn", "--version", version)


def _aliases(stage: Stage) -> dict[str, Any]:
    item = stage.aliases("churn")
    assert item is not None
    got: dict[str, Any] = {
        "live": item.get("live", {}).get("S"),
        "history": [v["S"] for v in item["history"]["L"]],
        "revision": int(item["revision"]["N"]),
    }
    if "candidate" in item:
        got["candidate"] = (item["candidate"]["S"], float(item["candidate_weight"]["N"]))
    return got


def test_promote_rollback_split_and_rm(
    stage: Stage, function: None, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    _push_three(stage, data, tmp_path)
    assert "split" in stage.refused("models", "split", "churn", "2", "--weight", "30")
    assert "no earlier live version" in stage.refused("models", "rollback", "churn")
    assert "churn 1 is live." in stage.ok("models", "promote", "churn", "1")
    assert "is live already; nothing changed" in stage.ok("models", "promote", "churn", "1")
    assert "churn 2 is live (was 1)." in stage.ok("models", "promote", "churn", "2")
    assert _aliases(stage) == {"live": "2", "history": ["1"], "revision": 2}
    assert "no version 9" in stage.refused("models", "promote", "churn", "9")

    out = stage.ok("models", "split", "churn", "3", "--weight", "30")
    assert "churn 3 gets 30% of requests, 2 the rest." in out
    assert _aliases(stage) == {
        "live": "2", "history": ["1"], "revision": 3, "candidate": ("3", 30.0),
    }  # fmt: skip
    fresh_view()
    served = {
        call("POST", "/predict/churn", {"features": [50.0] * 4})[1]["model_version"]
        for _ in range(60)
    }
    assert served == {"2", "3"}, "both versions answer a 30% split"
    assert "is the live version" in stage.refused("models", "split", "churn", "2", "--weight", "50")
    assert stage.run("models", "split", "churn", "3", "--weight", "101").exit_code == 2
    assert "is live; promote another" in " ".join(
        stage.refused("models", "rm", "churn", "2").split()
    )
    assert "is the candidate of a split" in stage.refused("models", "rm", "churn", "3")
    assert "is 3, not 1" in stage.refused("models", "split", "churn", "1", "--weight", "0")
    assert "The split of churn ended: 2 gets every request." in stage.ok(
        "models", "split", "churn", "3", "--weight", "0"
    )
    assert _aliases(stage) == {"live": "2", "history": ["1"], "revision": 4}
    assert "no split running" in stage.ok("models", "split", "churn", "3", "--weight", "0")

    assert "churn 1 is live again (was 2)." in stage.ok("models", "rollback", "churn")
    assert _aliases(stage) == {"live": "1", "history": [], "revision": 5}
    fresh_view()
    assert call("POST", "/predict/churn", {"features": [50.0] * 4})[1]["model_version"] == "1"
    assert "no earlier live version to roll back to (1 is live)" in stage.refused(
        "models", "rollback", "churn"
    )

    # Promoting the candidate ends the split; rm drops a version from the history.
    stage.ok("models", "split", "churn", "3", "--weight", "10")
    assert "The split with it ended." in stage.ok("models", "promote", "churn", "3")
    assert _aliases(stage) == {"live": "3", "history": ["1"], "revision": 7}
    item = stage.item("churn", "1")
    assert item is not None
    key = item["artifact_uri"]["S"].removeprefix(f"s3://{BUCKET}/")
    out = " ".join(stage.ok("models", "rm", "churn", "1").split())
    assert f"Removed churn 1 and its artifact {key}" in out
    assert stage.item("churn", "1") is None and key not in stage.objects()
    assert _aliases(stage) == {"live": "3", "history": [], "revision": 8}
    assert "no version 1" in stage.refused("models", "rm", "churn", "1")


def test_rm_keeps_an_artifact_another_version_uses(
    stage: Stage, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    path = save(tmp_path, "m.joblib", classifier(data))
    stage.ok("models", "push", str(path), "--name", "churn", "--version", "1", "--promote")
    stage.ok("models", "push", str(path), "--name", "churn", "--version", "1.1")
    (key,) = stage.objects()
    out = " ".join(stage.ok("models", "rm", "churn", "1.1").split())
    assert "its artifact stays (version 1 uses it too)" in out
    assert stage.objects() == [key] and stage.item("churn", "1.1") is None


def test_concurrent_promotes_one_wins_the_other_is_told_to_retry(
    stage: Stage, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    _push_three(stage, data, tmp_path)
    stage.ok("models", "promote", "churn", "1")
    config = load_config(stage.project)
    reg = open_registry(config, project_dir=stage.project, endpoint_url=stage.url)

    def slow_promote_of_3(aliases: Any) -> Any:
        # Between this command's read and its write, another promote completes.
        assert "churn 2 is live (was 1)." in stage.ok("models", "promote", "churn", "2")
        from dataclasses import replace

        return replace(aliases, live="3", history=(*aliases.history, aliases.live))

    with pytest.raises(ScarabError) as refused:
        update_aliases(reg, "churn", slow_promote_of_3)
    assert str(refused.value) == CONFLICT.format(name="churn")
    assert "Run the command again." in str(refused.value)
    assert _aliases(stage) == {"live": "2", "history": ["1"], "revision": 2}, "the other won"

    def promote_3_while_it_is_removed(aliases: Any) -> Any:
        stage.ok("models", "rm", "churn", "3")
        from dataclasses import replace

        return replace(aliases, live="3", history=(*aliases.history, aliases.live))

    with pytest.raises(ScarabError, match="has no version 3 any more"):
        update_aliases(reg, "churn", promote_3_while_it_is_removed)
    assert _aliases(stage) == {"live": "2", "history": ["1"], "revision": 2}
    # The first ever write races too: the item's absence is the condition.
    stage.ok("models", "push", str(save(tmp_path, "n.joblib", classifier(data))),
             "--name", "other", "--version", "1")  # fmt: skip

    def racing_first_promote(aliases: Any) -> Any:
        stage.ok("models", "promote", "other", "1")
        from dataclasses import replace

        return replace(aliases, live="1")

    with pytest.raises(ScarabError, match="changed while this command ran"):
        update_aliases(reg, "other", racing_first_promote)


def test_list_json_shape(stage: Stage, data: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    assert "No models yet" in stage.ok("models", "list")
    assert json.loads(stage.ok("models", "list", "--json")) == {"models": []}
    _push_three(stage, data, tmp_path)
    stage.ok("models", "promote", "churn", "1")
    stage.ok("models", "split", "churn", "2", "--weight", "30")
    listed = json.loads(stage.ok("models", "list", "--json"))
    rows = listed["models"]
    assert [(r["name"], r["version"], r["aliases"]) for r in rows] == [
        ("churn", "1", ["live"]),
        ("churn", "2", ["candidate:30"]),
        ("churn", "3", []),
    ]
    for row in rows:
        assert set(row) == {"name", "version", "kind", "aliases", "sha256", "created_at", "metrics"}
        item = stage.item("churn", row["version"])
        assert item is not None
        assert row["sha256"] == item["sha256"]["S"] and len(row["sha256"]) == 64
        assert row["created_at"] == item["created_at"]["S"]
        assert row["kind"] == "tabular-classifier" and row["metrics"] == {}
    text = stage.ok("models", "list")
    lines = text.splitlines()
    assert lines[0].split() == [
        "NAME",
        "VERSION",
        "KIND",
        "ALIASES",
        "SHA256",
        "CREATED",
        "METRICS",
    ]
    assert lines[1].split()[:5] == [
        "churn",
        "1",
        "tabular-classifier",
        "live",
        rows[0]["sha256"][:12],
    ]
    assert lines[2].split()[3] == "candidate:30"


# -- push-data --------------------------------------------------------------------------------


def test_push_data_points_the_live_forecaster_at_its_observations(
    stage: Stage, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    x, _, target = data
    regressor = LinearRegression().fit(x, target)
    joblib.dump(regressor, tmp_path / "r.joblib")
    stage.ok("models", "push", str(tmp_path / "r.joblib"), "--name", "reg", "--version", "1")
    item = stage.item("reg", "1")
    assert item is not None
    onnx_file = tmp_path / "f.onnx"
    key = item["artifact_uri"]["S"].removeprefix(f"s3://{BUCKET}/")
    onnx_file.write_bytes(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"history": {"type": "array"}}}))
    csv = tmp_path / "recent.csv"  # observations the function can forecast from
    packaged = Path(__file__).resolve().parents[2] / "lambda/lens/predict/artifacts/bikes-1h.csv"
    csv.write_bytes(packaged.read_bytes())
    unusable = tmp_path / "unusable.csv"
    unusable.write_text(
        "at,count,temp\n2012-12-31T22:00:00Z,120,0.3\n2012-12-31T23:00:00Z,90,0.28\n"
    )

    assert "no live version" in stage.refused("models", "push-data", "bikes-1h", str(csv))
    stage.ok(
        "models", "push", str(onnx_file), "--name", "bikes-1h", "--version", "1",
        "--kind", "forecaster", "--schema", str(schema), "--promote",
    )  # fmt: skip
    out = " ".join(stage.ok("models", "push-data", "bikes-1h", str(csv)).split())
    digest = hashlib.sha256(csv.read_bytes()).hexdigest()
    uri = f"s3://{BUCKET}/data/bikes-1h/{digest}.csv"
    assert uri in out
    item = stage.item("bikes-1h", "1")
    assert item is not None and item["data_uri"] == {"S": uri}
    got = boto3.client("s3").get_object(Bucket=BUCKET, Key=f"data/bikes-1h/{digest}.csv")
    assert got["Body"].read() == csv.read_bytes()
    stage.ok("models", "promote", "reg", "1")
    assert "only forecasters take data" in stage.refused("models", "push-data", "reg", str(csv))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00binary")
    assert "not a UTF-8 CSV" in stage.refused("models", "push-data", "bikes-1h", str(bad))
    refused = stage.refused("models", "push-data", "bikes-1h", str(unusable))
    assert "cannot be forecast from" in refused and "weather" in refused


class Skewed(LogisticRegression):  # type: ignore[misc]
    """A classifier whose probabilities its (registered) converter does not reproduce."""

    def predict_proba(self, x: Any) -> Any:
        return super().predict_proba(x) * 0.9 + 0.05


@pytest.fixture
def skewed_converter() -> Iterator[None]:
    """Skewed converted like a LogisticRegression: a converter that gets it wrong."""
    from skl2onnx import update_registered_converter
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import _converter_pool, _shape_calculator_pool
    from skl2onnx.operator_converters.linear_classifier import (
        convert_sklearn_linear_classifier,
    )
    from skl2onnx.shape_calculators.linear_classifier import (
        calculate_linear_classifier_output_shapes,
    )

    alias = "ScarabTestSkewed"
    update_registered_converter(
        Skewed,
        alias,
        calculate_linear_classifier_output_shapes,
        convert_sklearn_linear_classifier,
        options={
            "zipmap": [True, False, "columns"],
            "nocl": [True, False],
            "raw_scores": [True, False],
        },
    )
    yield
    sklearn_operator_name_map.pop(Skewed, None)
    _converter_pool.pop(alias, None)
    _shape_calculator_pool.pop(alias, None)


def test_a_conversion_that_does_not_predict_like_the_estimator_is_refused(
    stage: Stage, skewed_converter: None, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    x, y, _ = data
    path = save(tmp_path, "skewed.joblib", make_pipeline(StandardScaler(), Skewed()).fit(x, y))
    output = stage.refused("models", "push", str(path), "--name", "m", "--version", "1")
    assert "does not predict like it: the largest probability difference over 200" in output
    assert "(at most 0.0001 is accepted). Nothing was pushed." in output
    assert stage.items() == [] and stage.objects() == []


def test_push_and_list_with_local(
    project: Path, data: tuple[np.ndarray, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--local: the embedded emulator a `scarab serve` runs (started here as serve does)."""
    from scarab.emulator import start_embedded

    monkeypatch.chdir(project)
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    emulator = start_embedded(project)
    try:
        runner = CliRunner()
        # The deploy makes the registry (the embedded emulator may already hold it: it runs
        # in this process, and other tests deploy stage `test` into it too).
        deployed = runner.invoke(app, ["deploy", "--local"])
        assert deployed.exit_code == 0, deployed.output
        path = save(tmp_path, "m.joblib", classifier(data))
        push = ["models", "push", str(path), "--name", "churn", "--version", "1", "--promote"]
        result = runner.invoke(app, [*push, "--local"])
        assert result.exit_code == 0, result.output
        listed = runner.invoke(app, ["models", "list", "--local", "--json"])
        assert listed.exit_code == 0, listed.output
        (row,) = [m for m in json.loads(listed.output)["models"] if m["name"] == "churn"]
        assert (row["name"], row["version"], row["aliases"]) == ("churn", "1", ["live"])
    finally:
        emulator.stop()


def test_threshold_and_positive_label_decide_the_label(
    stage: Stage, function: None, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    x = data[0]
    model = classifier(data)
    path = save(tmp_path, "churn.joblib", model)
    push = ["models", "push", str(path), "--name", "churn"]
    stage.ok(*push, "--version", "1", "--threshold", "0.8", "--positive-label", "0", "--promote")
    item = stage.item("churn", "1")
    assert item is not None
    assert (item["threshold"], item["positive_label"]) == ({"N": "0.8"}, {"S": "0"})
    stay = model.predict_proba(x[:40])[:, 0]  # the probability of label "0"
    assert (stay >= 0.8).any() and (stay < 0.8).any(), "rows on both sides of the threshold"
    for i in range(40):
        status, body = call("POST", "/predict/churn", {"features": [float(v) for v in x[i]]})
        assert status == 200, body
        assert body["threshold"] == 0.8 and body["model_version"] == "1"
        assert body["probability"] == pytest.approx(stay[i], abs=1e-5)
        assert body["label"] == ("0" if stay[i] >= 0.8 else "1"), (body, stay[i])

    # Without the options: 0.5 and the second label, as before.
    stage.ok(*push, "--version", "2", "--promote")
    assert "threshold" not in (stage.item("churn", "2") or {})
    fresh_view()
    status, body = call("POST", "/predict/churn", {"features": [float(v) for v in x[0]]})
    assert status == 200 and body["threshold"] == 0.5 and body["model_version"] == "2"
    assert body["probability"] == pytest.approx(model.predict_proba(x[:1])[0, 1], abs=1e-5)

    # A version is immutable: the same bytes with another decision rule is refused.
    same = stage.ok(*push, "--version", "1", "--threshold", "0.8", "--positive-label", "0")
    assert "already pushed with these bytes; nothing changed" in same
    refused = stage.refused(*push, "--version", "1", "--threshold", "0.7", "--positive-label", "0")
    assert "already has a version 1 with threshold 0.8 (this push: --threshold 0.7)" in refused
    refused = stage.refused(*push, "--version", "2", "--threshold", "0.5")
    assert "with threshold unset (this push: --threshold 0.5)" in refused
    assert "is not one of the labels (0, 1)" in stage.refused(
        *push, "--version", "3", "--positive-label", "yes"
    )
    assert "give a probability from 0 to 1" in stage.refused(
        *push, "--version", "3", "--threshold", "1.5"
    )
    regressor = make_pipeline(StandardScaler(), Ridge()).fit(x, data[2])
    spend = save(tmp_path, "spend.joblib", regressor)
    out = stage.refused(
        "models", "push", str(spend), "--name", "spend", "--version", "1", "--threshold", "0.3"
    )
    assert "--threshold applies to a binary classifier; this model is a tabular-regressor" in out
    assert stage.item("churn", "3") is None and stage.item("spend", "1") is None
