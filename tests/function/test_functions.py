"""The function catalog and lens agree: each function's handler serves exactly the routes
the deploy's route table gives it, /openapi.json documents every route of the API, the
analyze entry never imports the model runtime, and lens reads no private Powertools state.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from lens.function import LensFunction
from lens.routing import rule_matches
from scarab.deploy.routes import ROUTES, Route, route_functions
from scarab.functions import ALL_ROUTES, FUNCTIONS, FunctionDef, get_function

from tests.function.events import FakeContext, b64, jpeg, response_json, rest_event
from tests.support.gemini_server import GeminiServer

ROOT = Path(__file__).resolve().parents[2]
EVERY = (*FUNCTIONS, ALL_ROUTES)
# numpy and onnxruntime, and lens's modules that import them.
MODEL_RUNTIME = (
    "numpy",
    "onnxruntime",
    "lens.predict.digits",
    "lens.predict.tabular",
    "lens.predict.forecast",
)


def _entry(fn: FunctionDef) -> tuple[ModuleType, LensFunction]:
    module_name, _, attr = fn.handler.rpartition(".")
    module = importlib.import_module(module_name)
    function = module.function
    assert isinstance(function, LensFunction)
    assert getattr(module, attr) is function.lambda_handler
    return module, function


def _concrete(path: str) -> str:
    return path.replace("{model_id}", "digits")


def _request(fn: FunctionDef, route: Route) -> dict[str, Any]:
    _, function = _entry(fn)
    event = rest_event(method=route.method, path=_concrete(route.path), body=None)
    result: dict[str, Any] = function.lambda_handler(event, FakeContext())  # type: ignore[arg-type]
    return result


def test_every_route_names_a_catalog_function() -> None:
    assert route_functions() == [fn.name for fn in FUNCTIONS]
    assert {r for fn in FUNCTIONS for r in fn.routes} == set(ROUTES)
    assert ALL_ROUTES.routes == ROUTES
    assert get_function("analyze").handler == "lens.entry.analyze.lambda_handler"
    with pytest.raises(KeyError):
        get_function("nope")


@pytest.mark.parametrize("fn", EVERY, ids=lambda fn: fn.name)
def test_each_function_registers_exactly_its_routes(fn: FunctionDef) -> None:
    _, function = _entry(fn)
    assert function.name == fn.name
    assert sorted(function.routes()) == sorted((r.path, r.method) for r in fn.routes)


@pytest.mark.parametrize("fn", EVERY, ids=lambda fn: fn.name)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_each_function_answers_its_routes_and_only_those(fn: FunctionDef, route: Route) -> None:
    """Through the handler: a route of the function reaches its code (any answer but the
    resolver's not_found / method_not_allowed); another function's route is a 404."""
    response = _request(fn, route)
    code = response_json(response).get("error", {}).get("code")
    if route in fn.routes:
        assert code not in ("not_found", "method_not_allowed"), response
    else:
        assert (response["statusCode"], code) == (404, "not_found")


@pytest.mark.parametrize(
    "fn", [f for f in EVERY if any(r.path == "/openapi.json" for r in f.routes)]
)
def test_openapi_documents_every_route_of_the_api(fn: FunctionDef) -> None:
    response = _request(fn, next(r for r in ROUTES if r.path == "/openapi.json"))
    doc = response_json(response)
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    expected = {(r.path, r.method) for r in ROUTES if r.path != "/openapi.json"}
    assert documented == expected


@pytest.mark.parametrize(
    "segment", ["digits", "a b", "x~y(z)!", "%41", "é", 'a"b', "a#b", "a?b", "a\\b", ""]
)
def test_allowed_methods_match_paths_as_powertools_routes_them(segment: str) -> None:
    """lens.routing matches `<name>` segments itself (for 405s); it must agree with how
    the resolver routes. Fails when Powertools changes its segment pattern."""
    from lens.handler import lambda_handler

    path = f"/predict/{segment}"
    routed = lambda_handler(rest_event(method="POST", path=path, body={}), FakeContext())  # type: ignore[arg-type]
    resolver_matched = response_json(routed)["error"]["code"] != "not_found"
    assert rule_matches("/predict/<model_id>", path) == resolver_matched
    wrong = lambda_handler(rest_event(method="GET", path=path), FakeContext())  # type: ignore[arg-type]
    expected = (405, "method_not_allowed") if resolver_matched else (404, "not_found")
    assert (wrong["statusCode"], response_json(wrong)["error"]["code"]) == expected


def test_lens_reads_no_private_powertools_attributes() -> None:
    private = re.compile(r"\b(?:app|router|resolver|self\.api_resolver)\._\w+|[\"']_path[\"']")
    hits = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in sorted((ROOT / "lambda" / "lens").rglob("*.py"))
        for line in path.read_text().splitlines()
        if private.search(line) or "_static_routes" in line or "_dynamic_routes" in line
    ]
    assert hits == []


def test_app_and_routes_do_not_import_each_other() -> None:
    lens_dir = ROOT / "lambda" / "lens"
    imports = re.compile(r"^\s*(?:from|import)\s+lens\.(\w+)", flags=re.MULTILINE)
    assert "routes" not in imports.findall((lens_dir / "app.py").read_text())
    assert "app" not in imports.findall((lens_dir / "routes.py").read_text())


_CHILD = """
import json, sys
from tests.function.events import FakeContext, b64, jpeg, rest_event
from {module} import lambda_handler
answers = []
for event in json.loads(sys.argv[1]):
    response = lambda_handler(event, FakeContext())
    answers.append([response["statusCode"], json.loads(response["body"])])
print(json.dumps({{"answers": answers, "loaded": sorted(sys.modules)}}))
"""


def _run_child(module: str, events: list[dict[str, Any]], env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD.format(module=module), json.dumps(events)],
        env={**env, "PYTHONPATH": os.pathsep.join([str(ROOT / "lambda"), str(ROOT)])},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return out


def test_analyze_entry_answers_without_the_model_runtime(gemini: GeminiServer) -> None:
    """A fresh interpreter imports the analyze entry, answers /health and an /analyze
    (through the real SDK to the Gemini test server), and never imports numpy/onnxruntime."""
    events = [
        rest_event(method="GET", path="/health"),
        rest_event(body={"image": b64(jpeg()), "speed": "fast"}),
        rest_event(method="GET", path="/openapi.json"),
    ]
    out = _run_child("lens.entry.analyze", events, dict(os.environ))
    statuses = [status for status, _ in out["answers"]]
    assert statuses == [200, 200, 200], out["answers"]
    assert out["answers"][1][1]["analysis"]["picture_location"]
    assert len(gemini.requests) == 1
    assert "google.genai" in out["loaded"]  # it did call Gemini...
    assert [m for m in MODEL_RUNTIME if m in out["loaded"]] == []  # ...and nothing else
    assert "boto3" not in out["loaded"]  # the key came from the environment


def test_models_entry_answers_without_google_genai() -> None:
    events = [
        rest_event(method="GET", path="/models"),
        rest_event(path="/predict/digits", body={"image": b64(jpeg())}),
    ]
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k}
    out = _run_child("lens.entry.models", events, env)
    assert out["answers"][0][0] == 200
    assert out["answers"][1][0] in (200, 422), out["answers"][1]  # a prediction, or no digit
    assert "onnxruntime" in out["loaded"]
    assert [m for m in ("google.genai", "lens.gemini") if m in out["loaded"]] == []
