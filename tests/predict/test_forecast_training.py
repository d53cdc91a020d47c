"""The forecasters' training: the data as found, reproducibility, and the hold-out metrics.

As for the other models (tests/predict/test_training.py), bytes are compared only between
two trainings on one machine; against the shipped artifacts the claim is behaviour: the
same registry entries, metrics within rounding, forecasts within BAND_TOLERANCE.
The data comes from training.train_forecasters.dataset_bytes (downloaded once, cached).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lens.predict import forecast
from lens.predict.registry import ARTIFACTS_DIR

from training import train_forecasters as tf

NAMES = ("bikes-1h", "bikes-3h")
# Rentals. Across CPUs a float32 sum may round a split the other way in a few trees.
BAND_TOLERANCE = 1.0
MAE_TOLERANCE = 0.05  # MAEs are rounded to 2 decimals
COVERAGE_TOLERANCE = 0.005


def _shipped(name: str) -> dict[str, Any]:
    models = json.loads((ARTIFACTS_DIR / "registry.json").read_text())["models"]
    return next(m for m in models if m["name"] == name)


@pytest.fixture(scope="module")
def series() -> tf.Series:
    return tf.load_series()


@pytest.fixture(scope="module")
def data(series: tf.Series) -> tf.Samples:
    return tf.samples(series)


def test_the_data_is_put_on_an_hourly_grid_with_its_missing_hours_marked(
    series: tf.Series,
) -> None:
    assert hashlib.sha256(tf.dataset_bytes()).hexdigest() == tf.DATASET_SHA256
    assert series.times[0] == dt.datetime(2011, 1, 1, 0)
    assert series.times[-1] == dt.datetime(2012, 12, 31, 23)
    assert len(series.times) == 731 * 24
    assert all(b - a == forecast.HOUR for a, b in zip(series.times, series.times[1:], strict=False))
    assert int(series.observed.sum()) == 17379  # the file's rows
    assert not series.observed[series.times.index(dt.datetime(2012, 10, 30, 12))]  # Sandy
    assert set(np.unique(series.weather[:, 0])) <= {1.0, 2.0, 3.0, 4.0}  # blanks filled
    assert [tf._hour(h) for h in ("12am", "1am", "11am", "12pm", "1pm", "11pm")] == [
        0, 1, 11, 12, 13, 23,
    ]  # fmt: skip


def test_the_holdout_is_the_last_weeks_after_every_training_window(data: tf.Samples) -> None:
    holdout = [at for at, h in zip(data.last_at, data.holdout, strict=True) if h]
    train = [at for at, t in zip(data.last_at, data.train, strict=True) if t]
    assert not (data.holdout & data.train).any()
    assert data.holdout_start == dt.datetime(2012, 11, 6, 0)  # 2013-01-01 minus 8 weeks
    assert holdout == sorted(holdout)  # time-ordered, never shuffled
    assert max(train) + forecast.HOUR * tf.MAX_HORIZON < data.holdout_start
    assert min(holdout) - forecast.HOUR * (forecast.WINDOW - 1) >= data.holdout_start
    assert len(holdout) > 1000 and len(train) > 10 * len(holdout)


def test_a_request_maps_to_the_feature_row_training_used(
    series: tf.Series, data: tf.Samples
) -> None:
    """The function's path (JSON observations -> request_row) builds training's rows."""
    for k in (0, 5000, len(data.last_at) - 1):
        t = series.times.index(data.last_at[k])
        history = []
        for i in range(t - forecast.WINDOW + 1, t + 1):
            rank, temp, atemp, humidity, windspeed = series.weather[i]
            history.append(
                {
                    "count": float(series.counts[i]),
                    "weather": forecast.WEATHER[int(rank) - 1],
                    "temp": temp,
                    "atemp": atemp,
                    "humidity": humidity,
                    "windspeed": windspeed,
                }
            )
        request = forecast.ForecastRequest.model_validate(
            {"last_at": data.last_at[k].isoformat(), "history": history}
        )
        row = np.asarray([forecast.request_row(request)], dtype=np.float32)
        assert (row[0] == data.x[k]).all(), k


@pytest.mark.parametrize("name", NAMES)
def test_the_shipped_forecasters_beat_both_baselines_at_every_horizon(name: str) -> None:
    table = _shipped(name)["metrics"]["holdout"]
    assert [row["horizon"] for row in table] == [f"T+{h}h" for h in range(1, tf.HORIZONS[name] + 1)]
    for row in table:
        assert row["mae"] < row["mae_persistence"], row
        assert row["mae"] < row["mae_same_hour_yesterday"], row


@pytest.mark.parametrize("name", NAMES)
def test_metrics_recomputed_from_the_shipped_onnx_match_the_registry(
    name: str, data: tf.Samples
) -> None:
    entry = _shipped(name)
    artifact = (ARTIFACTS_DIR / entry["artifact"]["path"]).read_bytes()
    assert hashlib.sha256(artifact).hexdigest() == entry["sha256"]
    raw = tf.onnx_raw(artifact, data.x[data.holdout])
    assert raw.shape == (int(data.holdout.sum()), tf.HORIZONS[name], 3)
    # Independently of holdout_metrics: MAE of the median, baselines from the raw counts.
    y = data.y[data.holdout]
    x = data.x[data.holdout]
    value = np.sort(np.maximum(raw, 0), axis=-1)[:, :, 1]
    for step, row in enumerate(entry["metrics"]["holdout"]):
        assert float(np.mean(np.abs(value[:, step] - y[:, step]))) == pytest.approx(
            row["mae"], abs=0.006
        )
        persistence = x[:, forecast.WINDOW - 1]
        yesterday = x[:, step]  # count_t-23 is T+1h's same hour yesterday
        assert round(float(np.mean(np.abs(persistence - y[:, step]))), 2) == row["mae_persistence"]
        assert (
            round(float(np.mean(np.abs(yesterday - y[:, step]))), 2)
            == row["mae_same_hour_yesterday"]
        )
    assert entry["metrics"]["holdout_windows"] == int(data.holdout.sum())
    assert entry["metrics"]["train_windows"] == int(data.train.sum())


@pytest.fixture(scope="module")
def two_trainings(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    first = tmp_path_factory.mktemp("first")
    second = tmp_path_factory.mktemp("second")
    tf.train(first)
    tf.train(second)
    return first, second


@pytest.mark.slow
def test_two_trainings_on_one_machine_are_byte_identical(two_trainings: tuple[Path, Path]) -> None:
    first, second = two_trainings
    names = sorted(p.name for p in first.iterdir())
    assert names == [
        "bikes-1h.csv", "bikes-1h.onnx", "bikes-3h.csv", "bikes-3h.onnx", "registry.json",
    ]  # fmt: skip
    assert sorted(p.name for p in second.iterdir()) == names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def _without_provenance(entry: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in entry.items() if k not in {"sha256", "metrics", "training"}}
    training = {k: v for k, v in entry["training"].items() if k != "trained_with"}
    return {**rest, "training": training}


@pytest.mark.slow
def test_retraining_agrees_with_the_shipped_forecasters(
    two_trainings: tuple[Path, Path], data: tf.Samples
) -> None:
    fresh_dir = two_trainings[0]
    fresh = json.loads((fresh_dir / "registry.json").read_text())["models"]
    assert [m["name"] for m in fresh] == list(NAMES)
    for new in fresh:
        name = new["name"]
        old = _shipped(name)
        assert _without_provenance(new) == _without_provenance(old), name
        assert (fresh_dir / f"{name}.csv").read_bytes() == (
            ARTIFACTS_DIR / f"{name}.csv"
        ).read_bytes()
        for a, b in zip(new["metrics"]["holdout"], old["metrics"]["holdout"], strict=True):
            assert a["horizon"] == b["horizon"]
            assert a["mae_persistence"] == b["mae_persistence"]
            assert a["mae_same_hour_yesterday"] == b["mae_same_hour_yesterday"]
            assert a["mae"] == pytest.approx(b["mae"], abs=MAE_TOLERANCE), (name, a)
            assert a["p10_p90_coverage"] == pytest.approx(
                b["p10_p90_coverage"], abs=COVERAGE_TOLERANCE
            ), (name, a)
            assert a["mae"] < min(a["mae_persistence"], a["mae_same_hour_yesterday"])
        x = data.x[data.holdout]
        ours = forecast.bands(tf.onnx_raw((fresh_dir / f"{name}.onnx").read_bytes(), x))
        theirs = forecast.bands(tf.onnx_raw((ARTIFACTS_DIR / f"{name}.onnx").read_bytes(), x))
        worst = float(np.abs(ours - theirs).max())
        assert worst <= BAND_TOLERANCE, f"{name}: forecasts differ by {worst:.3g} rentals"
