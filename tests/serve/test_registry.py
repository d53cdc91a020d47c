"""Bring your own model, end to end through `scarab serve`: the deploy creates the
registry and seeds the packaged models, `scarab models push --local` adds a pipeline
trained here, and the gateway answers with it (as the estimator would) without a
redeploy; promote, pins and a 30% split change what answers once the registry cache
expires."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.predict.drawing import b64, draw_digit
from tests.serve.support import DEFAULT_TOML, http, make_project
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, scarab_cli

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

StartServe = Callable[..., ServeProcess]
# A one-second registry cache, so the test sees a push without waiting a minute.
TOML = DEFAULT_TOML + '\n[functions.models.environment]\nSCARAB_REGISTRY_TTL_S = "1"\n'


def train_churn(c: float) -> tuple[object, np.ndarray, list[str]]:
    data = load_breast_cancer()
    names = [n.replace(" ", "_") for n in data.feature_names][:6]
    x = data.data[:, :6]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
    model.fit(x, data.target)
    model.steps[0][1].feature_names_in_ = np.array(names, dtype=object)  # as a DataFrame sets
    return model, x, names


def test_a_pushed_pipeline_is_served_through_the_gateway(
    tmp_path: Path, serve_factory: StartServe
) -> None:
    project = make_project(tmp_path / "p", toml=TOML, web=False)
    # One warm container for the models function: once it shows a registry change, every
    # later answer comes from that view (a second container could still hold the old one).
    serve = serve_factory(
        project,
        env={"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None},
        extra_args=["--max-containers", "1"],
    )
    headers = {"x-api-key": serve.api_key or "", "Content-Type": "application/json"}

    # A packaged model, seeded into the registry by the deploy, answers from it.
    digit = json.dumps({"image": b64(draw_digit(7))}).encode()
    seeded = http(f"{serve.api_url}/predict/digits", "POST", digit, headers)
    assert seeded.status == 200, seeded.body
    assert seeded.json()["model_version"] == "1.0.0"

    model, x, names = train_churn(1.0)
    first = tmp_path / "churn-1.joblib"
    joblib.dump(model, first)
    pushed = scarab_cli(
        project, "models", "push", str(first), "--name", "churn", "--version", "1",
        "--promote", "--local",
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr

    def listed() -> bool:
        resp = http(f"{serve.api_url}/models", headers=headers)
        return resp.status == 200 and "churn" in {m["name"] for m in resp.json()["models"]}

    wait_until(listed, timeout=30, what="the pushed model listed without a redeploy")
    for row in (0, 10, 100):
        body = json.dumps({"features": dict(zip(names, map(float, x[row]), strict=True))})
        resp = http(f"{serve.api_url}/predict/churn", "POST", body.encode(), headers)
        assert resp.status == 200, resp.body
        answer = resp.json()
        want = float(model.predict_proba(x[row : row + 1])[0, 1])  # type: ignore[attr-defined]
        assert abs(answer["probability"] - want) < 1e-5, (answer, want)
        assert answer["model_version"] == "1" and answer["features_used"]

    # Version 2 promoted: served once the cache expires; ?version=1 still pins the first.
    second_model, _, _ = train_churn(0.01)
    second = tmp_path / "churn-2.joblib"
    joblib.dump(second_model, second)
    promoted = scarab_cli(
        project, "models", "push", str(second), "--name", "churn", "--version", "2",
        "--promote", "--local",
    )  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    body = json.dumps({"features": list(map(float, x[5]))}).encode()

    def version_two() -> bool:
        resp = http(f"{serve.api_url}/predict/churn", "POST", body, headers)
        return resp.status == 200 and resp.json()["model_version"] == "2"

    wait_until(version_two, timeout=30, what="the promoted version served")
    pinned = http(f"{serve.api_url}/predict/churn?version=1", "POST", body, headers)
    assert pinned.status == 200 and pinned.json()["model_version"] == "1"
    missing = http(f"{serve.api_url}/predict/churn?version=9", "POST", body, headers)
    assert missing.status == 404 and missing.json()["error"]["code"] == "model_not_found"

    rolled = scarab_cli(project, "models", "rollback", "churn", "--local")
    assert rolled.returncode == 0, rolled.stderr
    wait_until(lambda: not version_two(), timeout=30, what="the rollback served")

    # A 30% split observed over 200 requests through the gateway.
    def candidate() -> dict[str, object] | None:
        resp = http(f"{serve.api_url}/models", headers=headers)
        assert resp.status == 200, resp.body
        (churn,) = [m for m in resp.json()["models"] if m["name"] == "churn"]
        assert churn["version"] == "1", churn  # live
        found: dict[str, object] | None = churn.get("candidate")
        return found

    split = scarab_cli(project, "models", "split", "churn", "2", "--weight", "30", "--local")
    assert split.returncode == 0, split.stderr
    want = {"version": "2", "weight": 30.0}
    wait_until(lambda: candidate() == want, timeout=30, what="the split in the registry view")
    served = [served_version(serve, body, headers) for _ in range(200)]
    # Binomial(200, 0.3): mean 60, sd 6.5; 4.5 sd either side.
    assert 31 <= served.count("2") <= 89, served.count("2")
    assert served.count("1") + served.count("2") == 200, set(served)

    ended = scarab_cli(project, "models", "split", "churn", "2", "--weight", "0", "--local")
    assert ended.returncode == 0, ended.stderr
    wait_until(lambda: candidate() is None, timeout=30, what="the split ended in the view")
    assert {served_version(serve, body, headers) for _ in range(50)} == {"1"}


def served_version(serve: ServeProcess, body: bytes, headers: dict[str, str]) -> str:
    """The model_version that answered one unpinned POST /predict/churn."""
    resp = http(f"{serve.api_url}/predict/churn", "POST", body, headers)
    assert resp.status == 200, resp.body
    return str(resp.json()["model_version"])
