"""The forecasters through a real `scarab serve`: API key, GET /forecast, POST /predict."""

from __future__ import annotations

import json

import pytest
from lens.predict import forecast
from lens.predict.registry import ARTIFACTS_DIR, registry

from tests.serve.conftest import Shared
from tests.serve.support import http

pytestmark = pytest.mark.emulator


def _stored_body(name: str) -> bytes:
    entry = registry().get(name)
    assert entry is not None and entry.data is not None
    request = forecast.parse_observations((ARTIFACTS_DIR / entry.data.path).read_text())
    return json.dumps(request.model_dump()).encode()


def test_get_forecast_needs_the_key_and_answers_with_metrics(shared: Shared) -> None:
    url = f"{shared.api}/forecast/bikes-3h"
    assert http(url).status == 403  # API Gateway's rule: no key, no call
    resp = http(url, headers={"x-api-key": shared.key})
    assert resp.status == 200, resp.body
    body = resp.json()
    assert [step["at"] for step in body["forecast"]] == [
        "2013-01-01T00:00:00",
        "2013-01-01T01:00:00",
        "2013-01-01T02:00:00",
    ]
    entry = registry().get("bikes-3h")
    assert entry is not None
    assert body["metrics"] == entry.metrics
    assert body["model_version"] == entry.version


def test_post_predict_with_history_through_the_gateway(shared: Shared) -> None:
    headers = {"x-api-key": shared.key, "Content-Type": "application/json"}
    posted = http(f"{shared.api}/predict/bikes-1h", "POST", _stored_body("bikes-1h"), headers)
    assert posted.status == 200, posted.body
    got = http(f"{shared.api}/forecast/bikes-1h", headers=headers)
    assert posted.json()["forecast"] == got.json()["forecast"]
    short = json.loads(_stored_body("bikes-1h"))
    short["history"] = short["history"][:-1]
    refused = http(f"{shared.api}/predict/bikes-1h", "POST", json.dumps(short).encode(), headers)
    assert refused.status == 400, refused.body
    error = refused.json()["error"]
    assert error["code"] == "invalid_history"
    assert error["message"].startswith("Field 'history' must hold exactly 24 hourly")
