"""GET /stats?since=24h: aggregates of the prediction log (lens.log.stats), for the web
client's dashboard and anyone with an API key.

Served by the `models` function (scarab.deploy.routes): both functions get the log's
database URL when the log is on, and this keeps the analyze artifact as it was. With
the log off (or its URL unreadable) the answer is 503 log_unavailable; a database that
cannot be read is 503 log_unreadable. SQLAlchemy is imported only when /stats runs with
the log on.

Forecasts next to actuals: for every forecaster of the registry, its newest distinct
logged forecasts, each hour with the count observed at that hour in the forecaster's
stored observations (the last 24 hours `scarab models push-data` uploaded), or null
while that hour is not observed yet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lens import log as prediction_log
from lens.errors import ApiError
from lens.observability import logger
from lens.predict import sources
from lens.predict.loader import ModelLoadError
from lens.predict.sources import RegistryUnavailable
from lens.routing import LensRouter
from lens.settings import get_settings

router = LensRouter()


@router.get("/stats")
def stats() -> dict[str, Any]:
    """Requests per hour by route and model, latency percentiles, errors by code, cache
    hit ratio, Gemini tokens and their estimated cost, forecasts against actuals."""
    from lens.log import stats as aggregates

    query = router.current_event.query_string_parameters or {}
    try:
        window = aggregates.parse_since(query.get("since"))
    except aggregates.BadSince as exc:
        raise ApiError(400, "invalid_since", str(exc)) from None
    settings = prediction_log.log_settings()
    url = prediction_log.database_url(settings) if settings.enabled else None
    if url is None:
        raise ApiError(
            503,
            "log_unavailable",
            "The prediction log is off for this stage, so there are no statistics: turn on "
            "[log] enabled and store the prediction-db-url secret, then deploy.",
        )
    end = prediction_log.now()
    start = end - window
    prices = {
        model: aggregates.Price(input=rates[0], output=rates[1])
        for model, rates in get_settings().gemini_prices.items()
    }
    try:
        groups, latencies = aggregates.read_summary(url, start)
    except Exception as exc:
        raise _unreadable(url, exc) from None
    answer = aggregates.summarize(groups, latencies, start=start, end=end, prices=prices)
    try:
        forecasts = _forecasts(url, start)
    except aggregates.sqlalchemy_error() as exc:  # read a page at a time, as consumed
        raise _unreadable(url, exc) from None
    answer = {"since": (query.get("since") or aggregates.DEFAULT_SINCE).strip(), **answer}
    answer["forecasts"] = forecasts
    return answer


def _unreadable(url: str, exc: Exception) -> ApiError:
    from lens.log.database import redacted

    logger.error(
        "prediction log unreadable",
        extra={"error": type(exc).__name__, "database": redacted(url)},
    )
    return ApiError(
        503, "log_unreadable", "The prediction log cannot be read right now; try again."
    )


def _forecasts(url: str, start: datetime) -> list[dict[str, Any]]:
    from lens.log.stats import forecasts_vs_actuals, read_forecasts

    try:
        view = sources.current()
    except RegistryUnavailable:
        return []  # no registry, no forecasters to name
    result = []
    for name in view.names():
        entry = sources.choose(view.models[name], sources.rng())
        if entry is None or entry.kind != "forecaster":
            continue
        logged = read_forecasts(url, start, name)
        result.append({"model": name, "recent": forecasts_vs_actuals(logged, _actuals(entry))})
    return result


def _actuals(entry: Any) -> dict[datetime, float]:
    """Observed counts by hour from the forecaster's stored observations ({} if unusable)."""
    from lens.predict import forecast

    try:
        observations = forecast.stored_observations(entry)
    except ModelLoadError:
        return {}
    last = observations.last_time().replace(tzinfo=None)
    size = len(observations.history)
    return {
        last - forecast.HOUR * (size - 1 - i): float(o.count)
        for i, o in enumerate(observations.history)
    }
