"""Routes for the offline models: GET /models, POST /predict/<model_id> and
GET /forecast/<model_id> (forecasters, from their stored observations).

The registry comes from lens.predict.sources (the package, or the registry table through
its TTL cache). /predict/<name> serves the model's live version, or its candidate for
candidate_weight percent of requests; `?version=V` pins a version. Every answer names
the `model_version` that answered.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel, ValidationError

from lens import uploads
from lens.cache import cached_json
from lens.cache import state as cache_state
from lens.cache.keys import prediction_key
from lens.errors import ApiError
from lens.intake import parse_json
from lens.invocation import current
from lens.log import json_digest
from lens.observability import NAMESPACE, logger
from lens.predict import sources
from lens.predict.loader import LoadedModel, ModelLoadError, store
from lens.predict.registry import TABULAR_KINDS, ModelEntry
from lens.predict.sources import RegistryUnavailable, RegistryView
from lens.routing import LensRouter

router = LensRouter()


def current_registry() -> RegistryView:
    """The registry this request sees; 503 registry_unavailable when it cannot be read."""
    try:
        return sources.current()
    except RegistryUnavailable:
        raise ApiError(
            503,
            "registry_unavailable",
            "The model registry cannot be read right now; try again shortly.",
        ) from None


@router.get("/models")
def list_models() -> dict[str, Any]:
    """Every model with a live version: name, version, kind, description, request schema
    and the aliases naming that version (plus the candidate while a split runs)."""
    view = current_registry()
    summaries = (view.models[name].summary() for name in view.names())
    return {"models": [s for s in summaries if s is not None]}


@router.post("/predict/<model_id>")
def predict(model_id: str) -> dict[str, Any]:
    """Run one prediction; errors are ApiError (rendered by the handler)."""
    started = time.perf_counter()
    try:
        entry = resolve(model_id, _pinned_version())
        current().note(model=entry.name, model_version=entry.version)
        body = _json_body()
        current().note(input_digest=json_digest(body), input=router.current_event.decoded_body)
        upload = _upload_of(entry, body)
        try:
            if upload is not None:
                body = _with_upload_image(body, upload)
            request = _validate(entry, body)
            # The model loads only on a miss: a cached answer needs no ONNX session (nor a
            # call to the SageMaker endpoint hosting it).
            result = cached_json(
                _key("predict", entry, request),
                lambda: _answer(entry, request, body if upload is not None else None),
                _answers_for(entry),
            )
        except ApiError as error:
            # Deleted after the answer or a definitive refusal; kept after a 5xx (retry).
            if upload is not None and error.status < 500:
                uploads.delete_upload(upload)
            raise
        if upload is not None:
            uploads.delete_upload(upload)
    except ApiError as error:
        _count_error(model_id, error)
        raise
    elapsed_ms = (time.perf_counter() - started) * 1000
    logger.info(
        "prediction",
        extra={
            "model": entry.name,
            "version": entry.version,
            "label": result.get("label"),
            "host": entry.host,
            "cache": cache_state(),
            "latency_ms": round(elapsed_ms, 2),
        },
    )
    _emit("PredictLatency", MetricUnit.Milliseconds, elapsed_ms, {"model": entry.name})
    return result


@router.get("/forecast/<model_id>")
def stored_forecast(model_id: str) -> dict[str, Any]:
    """A forecaster's forecast from the observations stored with it, and its hold-out metrics."""
    started = time.perf_counter()
    try:
        entry = resolve(model_id, _pinned_version())
        current().note(model=entry.name, model_version=entry.version)
        if entry.kind != "forecaster":
            view = current_registry()
            forecasters = ", ".join(
                n for n in view.names() if (m := view.get(n)) and _is_forecaster(m)
            )
            raise ApiError(
                404,
                "unknown_model",
                f"Model '{entry.name}' is not a forecaster; forecasters: {forecasters}.",
            )
        from lens.predict import forecast as forecasting

        try:
            request = forecasting.stored_observations(entry)
        except ModelLoadError as exc:
            logger.error("observations unusable", extra={"model": exc.model, "detail": exc.detail})
            raise ApiError(503, "model_unavailable", exc.public) from None
        observations = request.model_dump(mode="json")
        current().note(input_digest=json_digest(observations), input=observations)

        def forecast() -> dict[str, Any]:
            result = forecasting.predict(_loaded(entry), request)
            return {
                "model": entry.name,
                "model_version": result["model_version"],
                "observed_until": request.last_at,
                "forecast": result["forecast"],
                "metrics": entry.metrics,
            }

        answer = cached_json(_key("forecast", entry, request), forecast, _answers_for(entry))
    except ApiError as error:
        _count_error(model_id, error)
        raise
    elapsed_ms = (time.perf_counter() - started) * 1000
    logger.info(
        "forecast",
        extra={
            "model": entry.name,
            "version": entry.version,
            "cache": cache_state(),
            "latency_ms": round(elapsed_ms, 2),
        },
    )
    _emit("PredictLatency", MetricUnit.Milliseconds, elapsed_ms, {"model": entry.name})
    return answer


def _key(route: str, entry: ModelEntry, request: BaseModel) -> str:
    """The cache key of `entry`'s answer to `request` (the validated input, so two
    spellings of the same input are one key; the whole entry, so a version pushed again
    with another host or threshold never gets the old answers)."""
    return prediction_key(
        route,
        model=entry.name,
        version=entry.version,
        sha256=entry.sha256,
        inputs=request.model_dump(mode="json"),
        entry=entry.model_dump(mode="json"),
    )


def _answers_for(entry: ModelEntry) -> Callable[[dict[str, Any]], bool]:
    """Whether a cached value is `entry`'s answer (a corrupt item in the table is not)."""
    return lambda answer: answer.get("model_version") == entry.version


def _is_forecaster(model: Any) -> bool:
    entry = sources.choose(model, sources.rng())
    return entry is not None and entry.kind == "forecaster"


def _pinned_version() -> str | None:
    query = router.current_event.query_string_parameters or {}
    version = query.get("version")
    return version if isinstance(version, str) and version else None


def resolve(model_id: str, version: str | None = None) -> ModelEntry:
    """The registry entry a request for `model_id` gets: version `version` when pinned,
    else live or (for candidate_weight percent of calls) the candidate. 404
    unknown_model / model_not_found, 503 model_unavailable when nothing is live."""
    view = current_registry()
    model = view.get(model_id)
    if model is None:
        known = ", ".join(view.names()) or "none"
        raise ApiError(
            404, "unknown_model", f"There is no model '{model_id[:64]}'; known: {known}."
        )
    if version is not None:
        pinned = model.versions.get(version)
        if pinned is None:
            known = ", ".join(sorted(model.versions)) or "none"
            raise ApiError(
                404,
                "model_not_found",
                f"Model '{model.name}' has no version '{version[:64]}'; its versions: {known}.",
            )
        return pinned
    entry = sources.choose(model, sources.rng())
    if entry is None:
        raise ApiError(
            503,
            "model_unavailable",
            f"Model '{model.name}' has no live version to serve; promote one, or pin "
            "a version with ?version=.",
        )
    return entry


def _json_body() -> Any:
    raw = router.current_event.decoded_body
    if not raw:
        raise ApiError(400, "invalid_body", "The request body must be a JSON object.")
    try:
        return parse_json(raw)
    except ValueError:  # json.JSONDecodeError, whatever made the body unreadable
        raise ApiError(400, "malformed_json", "The request body is not valid JSON.") from None


def _validate(entry: ModelEntry, body: Any) -> BaseModel:
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "The request body must be a JSON object.")
    if entry.kind in TABULAR_KINDS:
        from lens.predict.tabular import parse_request

        return parse_request(entry, body)
    if entry.kind == "forecaster":
        from lens.predict.forecast import ForecastRequest, history_message

        try:
            return ForecastRequest.model_validate(body)
        except ValidationError as exc:
            raise ApiError(400, "invalid_history", history_message(exc)) from None
    if entry.kind != "image-classifier":
        raise ApiError(
            501,
            "unsupported_model_kind",
            f"Model '{entry.name}' is a {entry.kind}, which POST /predict does not serve.",
        )
    from lens.predict.digits import DigitsRequest

    schema: type[BaseModel] = DigitsRequest
    if not body.get("image"):
        # Same answer as /analyze gives for a request without an image.
        raise ApiError(400, "missing_image", "The request body has no image field.")
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        raise ApiError(422, "invalid_field", validation_message(exc)) from None


def validation_message(exc: ValidationError) -> str:
    """The first problem as a sentence naming the field, plus how many more there are."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "is not a known field"
    elif first["type"] == "missing":
        message = "is required"
    more = (
        f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        if len(errors) > 1
        else ""
    )
    return f"Field '{field}' {message[0].lower()}{message[1:]}{more}."


def _upload_of(entry: ModelEntry, body: Any) -> str | None:
    """The upload key an image model's request names in place of `image` (checked: 404
    upload_not_found for a malformed key), or None; 422 for both image and upload."""
    if not isinstance(body, dict) or "upload" not in body or entry.kind != "image-classifier":
        return None
    if body.get("image") is not None:
        raise ApiError(422, "invalid_field", "Send either image or upload, not both.")
    return uploads.check_key(body["upload"])


def _with_upload_image(body: dict[str, Any], key: str) -> dict[str, Any]:
    """`body` with the upload's bytes as its `image` (base64), as if sent inline."""
    data = uploads.read_upload(key)
    rest = {k: v for k, v in body.items() if k != "upload"}
    return {**rest, "image": base64.b64encode(data).decode("ascii")}


def _answer(
    entry: ModelEntry, request: BaseModel, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The prediction: from the SageMaker endpoint hosting the model (the request body
    as sent, or `body` when it replaced an upload by its image), else computed here."""
    from lens.predict import sagemaker

    if sagemaker.forwards(entry):
        sent = json.dumps(body) if body is not None else router.current_event.decoded_body
        return sagemaker.invoke(entry, (sent or "").encode())
    return _run(_loaded(entry), request)


def predict_here(entry: ModelEntry, body: Any) -> dict[str, Any]:
    """`entry`'s answer to a parsed request body computed in this process, whatever its
    host (what the endpoint hosting it runs); ApiError as POST /predict raises them."""
    return _run(_loaded(entry), _validate(entry, body))


def _loaded(entry: ModelEntry) -> LoadedModel:
    try:
        return store().get(entry)
    except ModelLoadError as exc:
        logger.error("model load failed", extra={"model": exc.model, "detail": exc.detail})
        raise ApiError(503, "model_unavailable", exc.public) from None


def _run(model: LoadedModel, request: BaseModel) -> dict[str, Any]:
    if model.entry.kind == "forecaster":
        from lens.predict import forecast

        return forecast.predict(model, cast(forecast.ForecastRequest, request))
    if model.entry.kind == "image-classifier":
        from lens.predict import digits

        return digits.predict(model, cast(digits.DigitsRequest, request))
    from lens.predict import tabular

    return tabular.predict(model, request)


def _count_error(model_id: str, error: ApiError) -> None:
    try:
        known = sources.current().get(model_id) is not None
    except RegistryUnavailable:
        known = False
    model = model_id if known else "unknown"
    _emit("PredictErrors", MetricUnit.Count, 1, {"model": model, "code": error.code})


def _emit(name: str, unit: MetricUnit, value: float, dimensions: dict[str, str]) -> None:
    # single_metric: per-model dimensions without touching the shared Metrics' dimensions.
    with single_metric(
        name=name, unit=unit, value=value, namespace=NAMESPACE, default_dimensions=dimensions
    ):
        pass
