"""A model hosted on a SageMaker endpoint, through `scarab serve`: `models push --host
sagemaker:<endpoint>` registers it, the models function forwards /predict/<name> to
InvokeEndpoint, and serve answers InvokeEndpoint by running the model in its workers
under SageMaker Serverless's limits; callers see the local model's answer, the response
cache in front of it, and the project's error body for SageMaker's failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_breast_cancer

from tests.serve.support import DEFAULT_TOML, REPO, Response, http, make_project
from tests.serve.test_registry import train_churn
from tests.serve.test_serve_targets import readme_targets_block
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, scarab_cli, start_serve

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

ENDPOINT = "scarab-dev"  # the stage's endpoint (Names.endpoint): serve emulates it
ARTIFACTS = REPO / "lambda" / "lens" / "predict" / "artifacts"
# The cache on (DEFAULT_TOML turns it off), and a one-second registry cache so a push is
# served at once.
TOML = (
    DEFAULT_TOML.replace("ttl_seconds = 0", "ttl_seconds = 300")
    + '\n[functions.models.environment]\nSCARAB_REGISTRY_TTL_S = "1"\n'
)


@dataclass
class Stage:
    serve: ServeProcess
    project: Path

    def function_log(self) -> str:
        return (self.project / ".scarab" / "local" / "logs" / "function.log").read_text()

    def post(self, model: str, body: bytes, **headers: str) -> Response:
        sent = {"x-api-key": self.serve.api_key or "", "Content-Type": "application/json"}
        return http(f"{self.serve.api_url}/predict/{model}", "POST", body, {**sent, **headers})


def push(project: Path, name: str, host: str, *extra: str) -> None:
    entry = next(
        m
        for m in json.loads((ARTIFACTS / "registry.json").read_text())["models"]
        if m["name"] == "tabular"
    )
    schema = project / "tabular-schema.json"
    schema.write_text(json.dumps(entry["input_schema"]))
    pushed = scarab_cli(
        project, "models", "push", str(ARTIFACTS / "tabular.onnx"), "--name", name,
        "--version", "1", "--kind", "tabular-classifier", "--schema", str(schema),
        "--labels", ",".join(entry["labels"]), "--positive-label", entry["positive_label"],
        "--host", host, "--promote", "--local", *extra,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    project = make_project(tmp_path_factory.mktemp("sagemaker-project"), toml=TOML, web=False)
    proc = start_serve(project, env={"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None})
    try:
        push(project, "hosted", f"sagemaker:{ENDPOINT}")
        push(project, "orphan", "sagemaker:nowhere-endpoint")
        # The README's push line, exactly as written (its churn.joblib made here).
        model, _, _ = train_churn(1.0)
        joblib.dump(model, project / "churn.joblib")
        (readme_push,) = [a for a in readme_targets_block() if a[:2] == ["models", "push"]]
        pushed = scarab_cli(project, *readme_push)
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        wait_until(
            lambda: {"hosted", "orphan", "big"}
            <= {m["name"] for m in http(
                f"{proc.api_url}/models", headers={"x-api-key": proc.api_key or ""}
            ).json()["models"]},
            timeout=30,
            what="the hosted models listed",
        )  # fmt: skip
        yield Stage(proc, project)
    finally:
        proc.stop()
        print(proc.output())


def features(row: int) -> bytes:
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names]
    return json.dumps(
        {"features": dict(zip(names, map(float, data.data[row]), strict=True))}
    ).encode()


def test_a_hosted_model_answers_as_the_local_one_and_is_cached(stage: Stage) -> None:
    body = features(3)
    local = stage.post("tabular", body)
    hosted = stage.post("hosted", body)
    assert local.status == 200, local.body
    assert hosted.status == 200, hosted.body
    answer, expected = hosted.json(), local.json()
    assert answer["model_version"] == "1" and expected["model_version"] == "1.0.0"
    assert {k: v for k, v in answer.items() if k != "model_version"} == {
        k: v for k, v in expected.items() if k != "model_version"
    }
    assert hosted.headers.get("x-cache") == "miss"
    again = stage.post("hosted", body)
    assert again.status == 200 and again.json() == answer
    assert again.headers.get("x-cache") == "hit"
    # CORS and keys stay API Gateway's: no key, no answer.
    assert http(f"{stage.serve.api_url}/predict/hosted", "POST", body).status == 403


def test_the_readmes_pushed_model_answers_from_the_endpoint(stage: Stage) -> None:
    model, x, names = train_churn(1.0)
    body = json.dumps({"features": dict(zip(names, map(float, x[0]), strict=True))}).encode()
    resp = stage.post("big", body)
    assert resp.status == 200, resp.body
    assert resp.json()["model_version"] == "1"
    assert resp.json()["label"] == str(model.predict(x[:1])[0])  # type: ignore[attr-defined]
    # The function answered it as a hosted model (its prediction log line says where).
    assert '"model":"big"' in stage.function_log()
    assert '"host":"sagemaker:scarab-dev"' in stage.function_log()


def test_a_body_over_sagemakers_4_mb_is_refused_with_the_projects_error(stage: Stage) -> None:
    # Valid JSON padded past 4 MB: the function validates it, SageMaker refuses its size.
    body = features(5)[:-1] + b" " * (5 * 1024 * 1024) + b"}"
    resp = stage.post("hosted", body)
    assert resp.status == 413, resp.body
    assert resp.json()["error"]["code"] == "payload_too_large"
    assert "4 MB" in resp.json()["error"]["message"]
    # The same body is fine for the model the function runs itself.
    assert stage.post("tabular", body).status == 200


def test_a_missing_endpoint_is_a_clear_502(stage: Stage) -> None:
    resp = stage.post("orphan", features(1))
    assert resp.status == 502, resp.body
    error = resp.json()["error"]
    assert error["code"] == "endpoint_not_found"
    assert "nowhere-endpoint" in error["message"]
    assert "account" in error["message"] and "123456789012" not in error["message"]


def test_a_bad_request_is_refused_before_sagemaker_as_locally(stage: Stage) -> None:
    resp = stage.post("hosted", b'{"features": {"mean_radius": 1}}')
    local = stage.post("tabular", b'{"features": {"mean_radius": 1}}')
    assert resp.status == local.status and resp.status in (400, 422), resp.body
    assert resp.json()["error"]["code"] == local.json()["error"]["code"]


def test_push_refuses_a_host_sagemaker_would_not_name(stage: Stage) -> None:
    for host in ("sagemaker:-bad", "sagemaker:" + "x" * 64, "ecs:thing"):
        result = scarab_cli(
            stage.project, "models", "push", str(ARTIFACTS / "tabular.onnx"), "--name", "bad",
            "--version", "1", "--host", host, "--local",
        )  # fmt: skip
        assert result.returncode == 2, result.stdout + result.stderr
        assert "--host" in result.stderr and "Traceback" not in result.stderr


def test_hosted_answers_are_in_the_prediction_log_as_local_ones(stage: Stage) -> None:
    from tests.log.test_serve_log import DB, rows

    stage.post("hosted", features(7))
    stage.post("orphan", features(7))
    logged = [
        (r["model"], r["model_version"], r["status"], r["error_code"], r["cache"])
        for r in rows(stage.project / DB)
        if r["route"] == "/predict/{model_id}" and r["model"] in ("hosted", "orphan")
    ]
    assert ("hosted", "1", 200, None, "miss") in logged, logged
    assert ("orphan", "1", 502, "endpoint_not_found", None) in logged, logged
