"""Hourly forecasters (`bikes-1h`, `bikes-3h`): history in, forecast with a p10-p90 band out.

The request is the last WINDOW hourly observations, oldest first, and the time of the
last one. The ONNX model takes one feature row (FEATURE_NAMES, built here and nowhere
else: training/train_forecasters.py imports `feature_row`) and answers a tensor of shape
(1, horizons, 3): the p10, median and p90 of each hour ahead. The answer is
{"forecast": [{"at", "value", "lower", "upper"}, ...], "model_version"}.

The stored observations GET /forecast answers from are a CSV (CSV_COLUMNS, one row per
hour, any order); the most recent WINDOW rows must be consecutive hours.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lens.errors import ApiError
from lens.predict.loader import LoadedModel, ModelLoadError, sha256_hex
from lens.predict.registry import ARTIFACTS_DIR, ModelEntry, registry

WINDOW = 24
HOUR = timedelta(hours=1)
# The dataset's weather situations, mildest first; the model sees their 1-based rank.
WEATHER: tuple[str, ...] = ("Clear", "Mist", "Light Rain", "Heavy Rain")
Weather = Literal["Clear", "Mist", "Light Rain", "Heavy Rain"]
QUANTILES = (0.1, 0.5, 0.9)
CSV_COLUMNS = ("at", "count", "weather", "temp", "atemp", "humidity", "windspeed")
OUTPUT = "forecast"

FEATURE_NAMES: tuple[str, ...] = (
    *(f"count_t-{lag}" for lag in range(WINDOW - 1, 0, -1)),
    "count_t",
    "weather",
    "temp",
    "atemp",
    "humidity",
    "windspeed",
    "hour",
    "weekday",
    "month",
    "weekend",
    "count_mean_24h",
    "count_mean_3h",
)


def _bounded(low: float, high: float) -> Any:
    # strict: a JSON number, not a numeric string; finite.
    return Field(strict=True, ge=low, le=high, allow_inf_nan=False)


Count = Annotated[float, _bounded(0, 1_000_000)]
Celsius = Annotated[float, _bounded(-80, 80)]
Percent = Annotated[float, _bounded(0, 100)]
Speed = Annotated[float, _bounded(0, 400)]


class Observation(BaseModel):
    """One hour: rentals and the weather (the UCI Bike Sharing dataset's columns)."""

    model_config = ConfigDict(extra="forbid")

    count: Count = Field(description="Rentals in the hour.")
    weather: Weather = Field(description="Weather situation: " + ", ".join(WEATHER) + ".")
    temp: Celsius = Field(description="Temperature, °C.")
    atemp: Celsius = Field(description="Feels-like temperature, °C.")
    humidity: Percent = Field(description="Relative humidity, %.")
    windspeed: Speed = Field(description="Wind speed, km/h.")


def parse_hour(value: str) -> datetime:
    """An ISO 8601 time on the hour ('2012-12-31T23:00:00', an offset allowed)."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not an ISO 8601 time like 2012-12-31T23:00:00") from None
    if (at.minute, at.second, at.microsecond) != (0, 0, 0):
        raise ValueError("must be on the hour (minutes and seconds 0)")
    # The forecast names the hours after it: they must exist on the calendar.
    if at.replace(tzinfo=None) > datetime.max - timedelta(hours=24):
        raise ValueError("is too late: the hours after it are past year 9999")
    return at


class ForecastRequest(BaseModel):
    """POST /predict/{forecaster}: the last 24 hourly observations and when the last was."""

    model_config = ConfigDict(extra="forbid")

    last_at: str = Field(
        description="The hour of the last observation, ISO 8601 (local time of the data; "
        "an offset, if given, is kept in the answer).",
        examples=["2012-12-31T23:00:00"],
    )
    history: list[Observation] = Field(
        description=f"Exactly {WINDOW} hourly observations, oldest first, the last at last_at.",
        min_length=WINDOW,
        max_length=WINDOW,
    )

    @field_validator("last_at")
    @classmethod
    def _on_the_hour(cls, value: str) -> str:
        parse_hour(value)
        return value

    def last_time(self) -> datetime:
        return parse_hour(self.last_at)


def input_schema() -> dict[str, Any]:
    """JSON schema of the request body (what the registry records and GET /models shows)."""
    return ForecastRequest.model_json_schema()


def history_message(exc: ValidationError) -> str:
    """The first problem of a forecast request as a sentence naming the field."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] in ("too_short", "too_long") and field == "history":
        given = (first.get("ctx") or {}).get("actual_length")
        has = f" (it has {given})" if given is not None else ""
        message = f"must hold exactly {WINDOW} hourly observations, oldest first{has}"
    elif first["type"] == "extra_forbidden":
        message = "is not a known field"
    elif first["type"] == "missing":
        message = "is required"
    else:
        message = first["msg"].removeprefix("Value error, ")
        message = message[0].lower() + message[1:]
    more = len(errors) - 1
    tail = f" ({more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"Field '{field}' {message}{tail}."


def feature_row(counts: Sequence[float], last: Sequence[float], last_at: datetime) -> list[float]:
    """The model's input row, in FEATURE_NAMES order.

    `counts`: the WINDOW hourly counts, oldest first; `last`: the last hour's weather as
    (weather rank 1-4, temp, atemp, humidity, windspeed); `last_at`: its wall-clock hour.
    """
    if len(counts) != WINDOW or len(last) != 5:
        raise ValueError(f"need {WINDOW} counts and 5 weather values")
    weekday = last_at.weekday()
    return [
        *(float(c) for c in counts),
        *(float(v) for v in last),
        float(last_at.hour),
        float(weekday),
        float(last_at.month),
        1.0 if weekday >= 5 else 0.0,
        math.fsum(counts) / WINDOW,
        math.fsum(counts[-3:]) / 3,
    ]


def request_row(request: ForecastRequest) -> list[float]:
    last = request.history[-1]
    weather = (
        float(WEATHER.index(last.weather) + 1),
        last.temp,
        last.atemp,
        last.humidity,
        last.windspeed,
    )
    return feature_row([o.count for o in request.history], weather, request.last_time())


def bands(raw: Any) -> Any:
    """(n, horizons, 3) quantile predictions -> non-negative, ordered p10 <= median <= p90.

    Quantile models are fitted separately, so their predictions can cross; sorting keeps
    each hour's band around its value. Rentals are never negative.
    """
    return np.sort(np.maximum(np.asarray(raw, dtype=np.float64), 0.0), axis=-1)


def run(model: LoadedModel, rows: Any) -> Any:
    """The model's (n, horizons, 3) bands for a batch of feature rows."""
    entry = model.entry
    outputs = [o.name for o in model.session.get_outputs()]
    if tuple(entry.features) != FEATURE_NAMES or OUTPUT not in outputs:
        raise ApiError(
            503,
            "model_unavailable",
            f"Model '{entry.name}' does not take this function's forecast features "
            f"(input {len(FEATURE_NAMES)} features, output '{OUTPUT}').",
        )
    batch = np.asarray(rows, dtype=np.float32)
    (raw,) = model.session.run([OUTPUT], {model.input_name: batch})
    return bands(raw)


def predict(model: LoadedModel, request: ForecastRequest) -> dict[str, Any]:
    """The forecast for the hours after `request.last_at`."""
    (hours,) = run(model, [request_row(request)])
    last_at = request.last_time()
    return {
        "forecast": [
            {
                "at": (last_at + HOUR * (step + 1)).isoformat(),
                "value": round(float(median), 1),
                "lower": round(float(low), 1),
                "upper": round(float(high), 1),
            }
            for step, (low, median, high) in enumerate(hours)
        ],
        "model_version": model.entry.version,
    }


def parse_observations(text: str) -> ForecastRequest:
    """The most recent WINDOW hours of a stored observations CSV, as a request.

    Raises ValueError naming the row and column when the file is not usable.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"the observations CSV has no column {', '.join(missing)}")
    rows: list[tuple[datetime, dict[str, Any]]] = []
    for line, row in enumerate(reader, start=2):
        try:
            at = parse_hour(row["at"])
            values: dict[str, Any] = {"weather": row["weather"]}
            for column in ("count", "temp", "atemp", "humidity", "windspeed"):
                values[column] = float(row[column])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"observations CSV line {line}: {exc}") from None
        rows.append((at, values))
    rows.sort(key=lambda r: r[0])
    recent = rows[-WINDOW:]
    if len(recent) < WINDOW:
        raise ValueError(f"the observations CSV has {len(rows)} hours; {WINDOW} are needed")
    for (before, _), (after, _) in pairwise(recent):
        if after - before != HOUR:
            raise ValueError(f"the observations CSV skips from {before} to {after}")
    try:
        return ForecastRequest(
            last_at=recent[-1][0].isoformat(),
            history=[Observation.model_validate(values) for _, values in recent],
        )
    except ValidationError as exc:
        raise ValueError(f"the observations CSV: {history_message(exc)}") from None


def stored_observations(entry: ModelEntry, artifacts_dir: Path = ARTIFACTS_DIR) -> ForecastRequest:
    """The observations stored with a forecaster, as a request for its last WINDOW hours.

    Read once per container and file; the file must match the registry's sha256.
    Raises ModelLoadError (public message safe for a client) when they are not usable.
    """
    if entry.data is None and entry.data_uri:
        # The registry table's form: s3://<bucket>/data/<name>/<sha256>.csv. A packaged
        # file with the same bytes is read from the package instead of downloaded.
        sha = entry.data_uri.rsplit("/", 1)[-1].removesuffix(".csv")
        packaged = {m.data.sha256: m.data.path for m in registry().models if m.data}
        if sha in packaged:
            return _stored(entry.name, str(artifacts_dir / packaged[sha]), sha)
        return _stored_s3(entry, entry.data_uri, sha)
    if entry.data is None:
        raise ModelLoadError(
            entry.name, f"Model '{entry.name}' has no stored observations to forecast from."
        )
    return _stored(entry.name, str(artifacts_dir / entry.data.path), entry.data.sha256)


_S3_OBSERVATIONS: dict[tuple[str, str], ForecastRequest] = {}
_MAX_OBSERVATIONS_BYTES = 8 * 1024 * 1024  # a few weeks of hours is kilobytes


def _stored_s3(entry: ModelEntry, uri: str, sha256: str) -> ForecastRequest:
    """Observations uploaded with `scarab models push-data`, downloaded once per container
    and checked against the sha256 their key names."""
    cached = _S3_OBSERVATIONS.get((uri, sha256))
    if cached is not None:
        return cached
    from lens.predict.loader import _download

    unusable = f"The observations stored with model '{entry.name}' are not usable."
    data = _download(entry, uri, _MAX_OBSERVATIONS_BYTES)
    if sha256_hex(data) != sha256:
        raise ModelLoadError(entry.name, unusable, f"sha256 mismatch for {uri}")
    try:
        request = parse_observations(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(entry.name, unusable, str(exc)) from None
    _S3_OBSERVATIONS[(uri, sha256)] = request
    return request


@lru_cache(maxsize=16)
def _stored(name: str, path: str, sha256: str) -> ForecastRequest:
    unusable = f"The observations stored with model '{name}' are not usable."
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelLoadError(name, unusable, str(exc)) from None
    if sha256_hex(data) != sha256:
        raise ModelLoadError(name, unusable, f"sha256 mismatch for {path}")
    try:
        return parse_observations(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(name, unusable, str(exc)) from None
