"""Review of issue 15: /invocations when the header and the body both name the model."""

from __future__ import annotations

import json

from lens.predict.registry import registry

from tests.server.conftest import KEY
from tests.server.support import ServerProcess, request

FEATURES = dict.fromkeys(registry().get("tabular").features, 1.0)
HEADERS = {"x-api-key": KEY, "content-type": "application/json"}
ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"


def invoke(server: ServerProcess, body: object, **headers: str) -> tuple[int, dict[str, object]]:
    status, _, data = request(
        server.url, "POST", "/invocations", headers={**HEADERS, **headers},
        body=json.dumps(body).encode(),
    )  # fmt: skip
    return status, json.loads(data)


def test_a_body_model_field_that_agrees_with_the_header_is_not_sent_to_the_model(
    server: ServerProcess,
) -> None:
    """InvokeEndpoint's CustomAttributes (scarab invoke sends it) plus a body that also
    says which model: the body's `model` is the SageMaker contract's, not a feature."""
    plain = invoke(server, {"features": FEATURES}, **{ATTRIBUTES: "model=tabular"})
    both = invoke(
        server, {"model": "tabular", "features": FEATURES}, **{ATTRIBUTES: "model=tabular"}
    )
    assert plain[0] == 200, plain
    assert both == plain


def test_a_body_model_that_contradicts_the_header_is_refused(server: ServerProcess) -> None:
    status, body = invoke(
        server, {"model": "digits", "features": FEATURES}, **{ATTRIBUTES: "model=tabular"}
    )
    assert status == 400, body
    assert body["error"]["code"] == "model_conflict"  # type: ignore[index]


def test_a_version_in_the_header_pins_the_models_version(server: ServerProcess) -> None:
    """The forwarding models function sends `model=<name>,version=<v>`: the endpoint
    answers as POST /predict/<name>?version=<v> does, never with another version."""
    live = registry().get("tabular").version
    body = {"features": FEATURES}
    pinned = invoke(server, body, **{ATTRIBUTES: f"model=tabular,version={live}"})
    assert pinned[0] == 200, pinned
    assert pinned == invoke(server, body, **{ATTRIBUTES: "model=tabular"})
    status, _, direct = request(
        server.url, "POST", "/predict/tabular?version=999", headers=HEADERS,
        body=json.dumps(body).encode(),
    )  # fmt: skip
    other = invoke(server, body, **{ATTRIBUTES: "model=tabular,version=999"})
    assert status == other[0] == 404, other
    assert other[1]["error"] == json.loads(direct)["error"]  # model_not_found, same words
