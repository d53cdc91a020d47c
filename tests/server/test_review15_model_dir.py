"""Review of issue 15: SCARAB_MODEL_DIR is where the registry is read "instead" (COMMON15),
also when MODEL_REGISTRY_TABLE is set too (the Fargate task's environment reused for the
SageMaker image, a local run with the stage's variables exported). Before, the table won."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from lens.predict.registry import PACKAGED_DIR

from tests.server.support import ServerProcess, aws_env, request, start_server
from tests.support.moto_server import MotoServer


@pytest.fixture(scope="module")
def both(
    moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("model") / "opt-ml-model"
    directory.mkdir()
    registry = json.loads((PACKAGED_DIR / "registry.json").read_text())
    [entry] = [m for m in registry["models"] if m["name"] == "tabular"]
    shutil.copy(PACKAGED_DIR / entry["artifact"]["path"], directory / entry["artifact"]["path"])
    (directory / "registry.json").write_text(json.dumps({"models": [entry]}))
    process = start_server(
        {
            **aws_env(moto_server),
            "SCARAB_MODEL_DIR": str(directory),
            # A table that does not exist: read, it would answer 503 registry_unavailable.
            "MODEL_REGISTRY_TABLE": "review15-no-such-table",
            "ARTIFACTS_BUCKET": "review15-no-such-bucket",
        }
    )
    try:
        yield process
    finally:
        process.stop()


def test_the_model_dir_wins_over_the_registry_table(both: ServerProcess) -> None:
    status, _, body = request(both.url, "GET", "/models")
    assert status == 200, body
    assert [m["name"] for m in json.loads(body)["models"]] == ["tabular"]
