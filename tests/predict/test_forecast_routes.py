"""The forecasters through the Powertools handler: GET /forecast/{model_id} from the stored
observations, POST /predict/{model_id} with explicit history, and refused histories."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from lens.entry.models import lambda_handler as models_handler
from lens.predict import forecast
from lens.predict.loader import ModelLoadError
from lens.predict.registry import ARTIFACTS_DIR, registry

from tests.function.events import EVENT_BUILDERS, FakeContext, response_json
from tests.predict.conftest import Call

FORECASTERS = {"bikes-1h": 1, "bikes-3h": 3}


def _stored_body(name: str) -> dict[str, Any]:
    """The packaged observations of `name` as a POST body (read straight from the CSV)."""
    entry = registry().get(name)
    assert entry is not None and entry.data is not None
    request = forecast.parse_observations((ARTIFACTS_DIR / entry.data.path).read_text())
    return request.model_dump()


def _check_forecast(answer: dict[str, Any], last_at: str, horizons: int) -> None:
    hours = [step["at"] for step in answer["forecast"]]
    start = dt.datetime.fromisoformat(last_at)
    assert hours == [(start + dt.timedelta(hours=h)).isoformat() for h in range(1, horizons + 1)]
    for step in answer["forecast"]:
        assert set(step) == {"at", "value", "lower", "upper"}
        assert 0 <= step["lower"] <= step["value"] <= step["upper"], step


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_get_forecast_answers_from_the_stored_observations_with_the_metrics(
    call: Call, name: str
) -> None:
    entry = registry().get(name)
    assert entry is not None
    status, body, _ = call("GET", f"/forecast/{name}")
    assert status == 200, body
    assert set(body) == {"model", "model_version", "observed_until", "forecast", "metrics"}
    assert (body["model"], body["model_version"]) == (name, entry.version)
    assert body["observed_until"] == _stored_body(name)["last_at"] == "2012-12-31T23:00:00"
    _check_forecast(body, body["observed_until"], FORECASTERS[name])
    assert body["metrics"] == entry.metrics
    assert [row["horizon"] for row in body["metrics"]["holdout"]] == [
        f"T+{h}h" for h in range(1, FORECASTERS[name] + 1)
    ]


@pytest.mark.parametrize("name", sorted(FORECASTERS))
def test_post_with_the_stored_history_answers_what_get_answers(call: Call, name: str) -> None:
    body = _stored_body(name)
    status, posted, _ = call("POST", f"/predict/{name}", body)
    assert status == 200, posted
    assert set(posted) == {"forecast", "model_version"}
    _, got, _ = call("GET", f"/forecast/{name}")
    assert posted["forecast"] == got["forecast"]
    assert posted["model_version"] == got["model_version"]


def test_bikes_1h_is_the_first_hour_of_bikes_3h(call: Call) -> None:
    body = _stored_body("bikes-3h")
    _, one, _ = call("POST", "/predict/bikes-1h", body)
    _, three, _ = call("POST", "/predict/bikes-3h", body)
    assert one["forecast"] == three["forecast"][:1]


def test_the_forecast_follows_the_history(call: Call) -> None:
    """More riders in the last hours forecast more riders next hour (the model is used)."""
    quiet = _stored_body("bikes-1h")
    busy = copy.deepcopy(quiet)
    for observation in busy["history"][-3:]:
        observation["count"] = observation["count"] * 10 + 300
    _, a, _ = call("POST", "/predict/bikes-1h", quiet)
    _, b, _ = call("POST", "/predict/bikes-1h", busy)
    assert b["forecast"][0]["value"] > a["forecast"][0]["value"] + 50


def test_an_offset_in_last_at_is_kept_in_the_answer(call: Call) -> None:
    body = {**_stored_body("bikes-3h"), "last_at": "2012-12-31T23:00:00-05:00"}
    status, answer, _ = call("POST", "/predict/bikes-3h", body)
    assert status == 200, answer
    assert [s["at"] for s in answer["forecast"]] == [
        "2013-01-01T00:00:00-05:00",
        "2013-01-01T01:00:00-05:00",
        "2013-01-01T02:00:00-05:00",
    ]


def _with(body: dict[str, Any], index: int, **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    for key, value in changes.items():
        if value is None:
            del changed["history"][index][key]
        else:
            changed["history"][index][key] = value
    return changed


def _bad_bodies() -> list[tuple[str, Any, str]]:
    good = _stored_body("bikes-3h")
    return [
        ("23 hours", {**good, "history": good["history"][1:]}, "Field 'history' must hold "),
        ("25 hours", {**good, "history": good["history"] * 2}, "Field 'history' must hold "),
        ("no history", {"last_at": good["last_at"]}, "Field 'history' is required"),
        ("no last_at", {"history": good["history"]}, "Field 'last_at' is required"),
        ("half past", {**good, "last_at": "2012-12-31T23:30:00"}, "Field 'last_at' must be on"),
        ("not a time", {**good, "last_at": "yesterday"}, "Field 'last_at' is not an ISO 8601"),
        ("missing count", _with(good, 5, count=None), "Field 'history.5.count' is required"),
        ("string count", _with(good, 0, count="12"), "Field 'history.0.count'"),
        ("negative count", _with(good, 23, count=-1), "Field 'history.23.count'"),
        ("unknown weather", _with(good, 2, weather="Snow"), "Field 'history.2.weather'"),
        ("humidity > 100", _with(good, 7, humidity=101), "Field 'history.7.humidity'"),
        ("extra field", _with(good, 1, rain=1.0), "Field 'history.1.rain' is not a known"),
        ("history of numbers", {**good, "history": [1] * 24}, "Field 'history.0'"),
    ]


@pytest.mark.parametrize(
    ("case", "body", "message"), _bad_bodies(), ids=[c[0] for c in _bad_bodies()]
)
def test_a_bad_history_is_400_naming_the_field(
    call: Call, case: str, body: Any, message: str
) -> None:
    status, answer, _ = call("POST", "/predict/bikes-3h", body)
    assert status == 400, (case, answer)
    assert answer["error"]["code"] == "invalid_history"
    assert answer["error"]["message"].startswith(message), answer
    assert "Traceback" not in answer["error"]["message"]


def test_the_history_length_error_says_how_many_were_sent(call: Call) -> None:
    body = _stored_body("bikes-1h")
    body["history"] = body["history"][:3]
    _, answer, _ = call("POST", "/predict/bikes-1h", body)
    assert answer["error"]["message"] == (
        "Field 'history' must hold exactly 24 hourly observations, oldest first (it has 3)."
    )


def test_a_body_that_is_not_an_object_is_400(call: Call) -> None:
    status, answer, _ = call("POST", "/predict/bikes-3h", [1, 2])
    assert (status, answer["error"]["code"]) == (400, "invalid_body")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("digits", "is not a forecaster; forecasters: bikes-1h, bikes-3h"), ("nope", "no model")],
)
def test_get_forecast_of_a_model_that_is_no_forecaster_is_404(
    call: Call, name: str, fragment: str
) -> None:
    status, answer, _ = call("GET", f"/forecast/{name}")
    assert (status, answer["error"]["code"]) == (404, "unknown_model")
    assert fragment in answer["error"]["message"]


def test_post_forecast_is_405_with_allow_get(call: Call) -> None:
    status, answer, headers = call("POST", "/forecast/bikes-3h", {})
    assert (status, answer["error"]["code"]) == (405, "method_not_allowed")
    assert headers["allow"] == "GET, OPTIONS"


@pytest.mark.parametrize("kind", sorted(EVENT_BUILDERS))
def test_the_models_function_answers_get_forecast_in_every_event_shape(
    cache_dir: Path, kind: str
) -> None:
    event = EVENT_BUILDERS[kind](method="GET", path="/forecast/bikes-3h", body=None)
    response = models_handler(event, FakeContext())
    assert response["statusCode"] == 200, response
    assert len(response_json(response)["forecast"]) == 3


def test_stored_observations_must_match_their_sha256(tmp_path: Path) -> None:
    entry = registry().get("bikes-3h")
    assert entry is not None and entry.data is not None
    text = (ARTIFACTS_DIR / entry.data.path).read_text()
    (tmp_path / entry.data.path).write_text(text.replace(",Clear,", ",Mist,", 1))
    with pytest.raises(ModelLoadError) as caught:
        forecast.stored_observations(entry, tmp_path)
    assert "not usable" in caught.value.public and "sha256" in caught.value.detail
    (tmp_path / entry.data.path).write_text(text)
    assert forecast.stored_observations(entry, tmp_path).last_at == "2012-12-31T23:00:00"


def test_a_missing_hour_in_the_stored_observations_is_named() -> None:
    lines = (ARTIFACTS_DIR / "bikes-3h.csv").read_text().splitlines()
    forecast.parse_observations("\n".join(lines))  # the packaged file is complete
    gap = "\n".join(line for line in lines if not line.startswith("2012-12-31T12:"))
    with pytest.raises(ValueError, match="skips from 2012-12-31 11:00:00 to 2012-12-31 13:00"):
        forecast.parse_observations(gap)
    with pytest.raises(ValueError, match="no column weather"):
        forecast.parse_observations(lines[0].replace("weather", "wx") + "\n")
    with pytest.raises(ValueError, match="has 2 hours; 24 are needed"):
        forecast.parse_observations("\n".join(lines[:3]))


def test_the_packaged_registry_describes_the_forecasters() -> None:
    for name, horizons in FORECASTERS.items():
        entry = registry().get(name)
        assert entry is not None and entry.data is not None
        assert entry.kind == "forecaster" and entry.labels == []
        assert tuple(entry.features) == forecast.FEATURE_NAMES
        assert entry.input_schema == forecast.input_schema()
        assert entry.training["horizons"] == horizons
        data = (ARTIFACTS_DIR / entry.data.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry.data.sha256
        assert json.loads(json.dumps(entry.metrics)) == entry.metrics  # a JSON object
