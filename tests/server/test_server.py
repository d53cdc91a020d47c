"""The server beyond the shared table: its OpenAPI document, SCARAB_MODEL_DIR, models kept
loaded, SageMaker's model choice, the command line, and the event it builds."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lens.errors import ApiError
from lens.handler import function
from lens.predict.registry import PACKAGED_DIR, model_dir
from lens.routing import declared_routes
from lens.server import sagemaker
from lens.server.events import BINARY_MEDIA_TYPES, HttpRequest, rest_event
from scarab.deploy.models import BINARY_MEDIA_TYPES as DEPLOYED_BINARY_TYPES

from tests.server.conftest import KEY
from tests.server.support import TASK_ROOT, ServerProcess, request, start_server
from tests.server.test_table import FEATURES


def test_openapi_is_the_functions_document_plus_sagemakers_routes(server: ServerProcess) -> None:
    status, _, body = request(server.url, "GET", "/openapi.json", headers={"x-api-key": KEY})
    assert status == 200
    document = json.loads(body)
    from lens.openapi import openapi_json

    functions = json.loads(openapi_json())
    assert {k: v for k, v in document["paths"].items() if k not in {"/ping", "/invocations"}} == (
        functions["paths"]
    )
    assert document["components"] == functions["components"]
    assert set(document["paths"]["/ping"]) == {"get"}
    invocations = document["paths"]["/invocations"]["post"]
    assert invocations["parameters"][0]["name"] == "X-Amzn-SageMaker-Custom-Attributes"
    assert "#/components/schemas/ErrorResponse" in json.dumps(invocations["responses"])
    assert "ErrorResponse" in document["components"]["schemas"]
    for path, _method in function.routes():
        if path != "/openapi.json":
            assert path in document["paths"], path


def test_models_stay_loaded_between_requests(server: ServerProcess) -> None:
    for path in ("/predict/tabular", "/invocations") * 3:
        headers = {"x-api-key": KEY}
        assert request(server.url, "POST", path, headers=headers, body=FEATURES.encode())[0] == 200
    loads = [
        json.loads(line)
        for line in server.output().splitlines()
        if line.startswith("{") and '"model loaded"' in line
    ]
    assert [entry["model"] for entry in loads].count("tabular") == 1
    health = json.loads(request(server.url, "GET", "/health")[2])
    assert "tabular" in health["offline_models"]


@pytest.fixture(scope="module")
def tabular_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server reading a model directory with one model (no keys, no endpoint models)."""
    directory = tmp_path_factory.mktemp("model") / "opt-ml-model"
    directory.mkdir()
    registry = json.loads((PACKAGED_DIR / "registry.json").read_text())
    [entry] = [m for m in registry["models"] if m["name"] == "tabular"]
    shutil.copy(PACKAGED_DIR / entry["artifact"]["path"], directory / entry["artifact"]["path"])
    (directory / "registry.json").write_text(json.dumps({"models": [entry]}))
    process = start_server({"SCARAB_MODEL_DIR": str(directory)})
    try:
        yield process
    finally:
        process.stop()


def test_model_dir_is_where_the_registry_and_artifacts_are_read(
    tabular_only: ServerProcess,
) -> None:
    status, _, body = request(tabular_only.url, "GET", "/models")
    assert status == 200
    assert [m["name"] for m in json.loads(body)["models"]] == ["tabular"]
    status, _, body = request(tabular_only.url, "GET", "/forecast/bikes-3h")
    assert status == 404 and json.loads(body)["error"]["code"] == "unknown_model"
    # No model named and no SCARAB_ENDPOINT_MODELS: the registry's only model answers.
    status, _, body = request(tabular_only.url, "POST", "/invocations", body=FEATURES.encode())
    assert status == 200, body
    assert json.loads(body)["model_version"] == "1.0.0"
    assert json.loads(request(tabular_only.url, "GET", "/health")[2])["offline_models"] == [
        "tabular"
    ]


def test_model_dir_is_decided_in_one_place(tmp_path: Path) -> None:
    assert model_dir({}) == PACKAGED_DIR
    assert model_dir({"SCARAB_MODEL_DIR": "  "}) == PACKAGED_DIR
    assert model_dir({"SCARAB_MODEL_DIR": str(tmp_path)}) == tmp_path.resolve()


@pytest.mark.parametrize(
    ("attributes", "body", "served", "model", "sent"),
    [
        ("model=tabular", b'{"features": {}}', [], "tabular", b'{"features": {}}'),
        ("trace=1; model=digits", b"{}", ["digits"], "digits", b"{}"),
        (None, b'{"model": "bikes-3h", "history": []}', [], "bikes-3h", b'{"history": []}'),
        (None, b'{"features": {}}', ["tabular"], "tabular", b'{"features": {}}'),
        (None, b"not json", ["tabular"], "tabular", b"not json"),
    ],
)
def test_the_model_of_an_invocation(
    attributes: str | None, body: bytes, served: list[str], model: str, sent: bytes
) -> None:
    chosen = sagemaker.choose(attributes, body, served, ["bikes-3h", "digits", "tabular"])
    assert (chosen.model, json.loads(chosen.body) if sent != b"not json" else chosen.body) == (
        model,
        json.loads(sent) if sent != b"not json" else sent,
    )


def test_an_invocation_without_a_model_on_a_multi_model_endpoint_is_400() -> None:
    with pytest.raises(ApiError) as caught:
        sagemaker.choose(None, b"{}", [], ["digits", "tabular"])
    assert (caught.value.status, caught.value.code) == (400, "model_required")
    assert "digits, tabular" in caught.value.message
    with pytest.raises(ApiError) as caught:
        sagemaker.choose("model=digits", b"{}", ["tabular"], ["digits", "tabular"])
    assert (caught.value.status, caught.value.code) == (404, "unknown_model")


def test_the_endpoint_models_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sagemaker.ENDPOINT_MODELS_ENV, " tabular, ,bikes-3h ")
    assert sagemaker.endpoint_models() == ["tabular", "bikes-3h"]
    monkeypatch.delenv(sagemaker.ENDPOINT_MODELS_ENV)
    assert sagemaker.endpoint_models() == []


@pytest.mark.parametrize("argv", [["--port", "0"], ["--port", "http"], ["--bogus"]])
def test_bad_arguments_are_a_usage_error(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lens.server", *argv],
        cwd=TASK_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "usage: python -m lens.server" in done.stderr
    assert "Traceback" not in done.stderr


def test_binary_media_types_are_the_deployed_apis() -> None:
    assert BINARY_MEDIA_TYPES == DEPLOYED_BINARY_TYPES


def test_the_event_carries_binary_bodies_as_api_gateway_does() -> None:
    rules = [rule for rule, _ in declared_routes(function.routers)]
    image = HttpRequest(
        "POST", "/analyze", "speed=fast", [("content-type", "image/png")], b"\x89PNG\xff"
    )
    event = rest_event(image, "rid", rules)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\x89PNG\xff"
    assert event["queryStringParameters"] == {"speed": "fast"}
    text = HttpRequest("POST", "/predict/tabular", "", [("content-type", "text/plain")], b"{\xff}")
    event = rest_event(text, "rid", rules)
    assert event["isBase64Encoded"] is False and event["body"] == "{\ufffd}"
    assert event["resource"] == "/predict/{model_id}"
    assert event["requestContext"]["requestId"] == "rid"
