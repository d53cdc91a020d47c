"""The analysis routes: POST /analyze, GET /health (GET /openapi.json is lens.openapi)."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

import lens
from lens import cache, predict, uploads
from lens.cache.keys import analyze_key, digest, upload_key
from lens.errors import ApiError
from lens.gemini import analyze_with_gemini
from lens.images import prepare_image
from lens.intake import decode_image_field
from lens.invocation import current
from lens.observability import logger, metrics
from lens.prompt import SYSTEM_INSTRUCTION, user_prompt
from lens.routing import LensRouter
from lens.schema import (
    Analysis,
    AnalyzeRequest,
    AnalyzeResponse,
    ErrorResponse,
    GeminiHealth,
    HealthResponse,
    ImageInfo,
    Timings,
    Usage,
)
from lens.secrets import key_status
from lens.settings import get_settings

router = LensRouter()


def _errors(*statuses: int) -> dict[int, dict[str, object]]:
    return {
        status: {
            "description": "An error (see error.code)",
            "content": {"application/json": {"model": ErrorResponse}},
        }
        for status in statuses
    }


@router.post(
    "/analyze",
    summary="Analyze a photo of ancient Egyptian art",
    description="Send JSON {image, speed, imageType} (or {upload: <key from POST /uploads>, "
    "speed, imageType}), or the raw image bytes with an image/* Content-Type (speed and "
    "imageType then go in the query string).",
    responses=_errors(400, 404, 413, 415, 422, 502, 503, 504),  # type: ignore[arg-type]
    tags=["analysis"],
)
def analyze(body: AnalyzeRequest) -> AnalyzeResponse:
    return run_analysis(body)


def image_source(body: AnalyzeRequest) -> str | None:
    """The upload key of a request that names one; None for an inline image. 400
    missing_image for neither (as before uploads), 422 for both."""
    if body.image is not None and body.upload is not None:
        raise ApiError(422, "invalid_field", "Send either image or upload, not both.")
    if body.upload is not None:
        return body.upload
    if body.image is None:
        raise ApiError(400, "missing_image", "The request body has no image field.")
    return None


def run_analysis(body: AnalyzeRequest) -> AnalyzeResponse:
    """The /analyze answer to `body`, for a direct request and for a job alike. An upload
    is read from the bucket and deleted after the answer (or a definitive 4xx refusal);
    after a 5xx it is kept, so a retry can read it again."""
    key = image_source(body)
    if key is None:
        return _analyze(body, None)
    uploads.check_key(key)
    try:
        answer = _analyze(body, key)
    except ApiError as error:
        if error.status < 500:
            uploads.delete_upload(key)
        raise
    uploads.delete_upload(key)
    return answer


def _analyze(body: AnalyzeRequest, key: str | None) -> AnalyzeResponse:
    invocation = current()
    settings = get_settings()  # the body size was checked by the handler, before validation
    started = time.perf_counter()
    # For the prediction log: the model asked for (so a failed call names it too) and the
    # input (kept only with [log] store_inputs; its digest is the prepared image's sha256).
    invocation.note(model=settings.model_for(body.speed), input=body.image or key)
    preparation = {
        "max_side": settings.max_side,
        "max_pixels": settings.max_pixels,
        "max_bytes": settings.max_image_bytes,
        "jpeg_quality": settings.jpeg_quality,
        "memory_budget": settings.image_memory_bytes,
    }

    def question(prepared_sha256: str) -> str:
        return analyze_key(
            prepared_sha256,
            speed=body.speed,
            image_type=body.image_type,
            model=settings.model_for(body.speed),
            thinking=settings.thinking[body.speed],
            prompt=SYSTEM_INSTRUCTION + user_prompt(body.image_type),
            version=lens.__version__,
        )

    # An upload this container prepared before prepares to the same bytes: when their
    # answer is in memory, it is a hit without decoding the upload or the image again
    # (the upload's text is the key: decoding 2 MB of base64 costs more than hashing it).
    upload: str | None = None
    if body.image is not None:
        upload = upload_key(body.image.encode("utf-8", "surrogatepass"), preparation)
        known = cache.recall(upload)
        if known is not None and (
            (answer := cache.peek(question(known["sha256"]), _usable)) is not None
        ):
            info = ImageInfo.model_validate(known["image"])
            invocation.note(input_digest=known["sha256"])
            return _answer(body, answer, info, started, started, attempts=0)
        raw = decode_image_field(body.image, settings.max_image_bytes)
    else:
        # An upload's limit is the bucket's (checked by read_upload), not a request body's.
        raw = uploads.read_upload(str(key))
        preparation["max_bytes"] = max(settings.max_image_bytes, settings.uploads_max_bytes)
    image = prepare_image(raw, **preparation)
    prepared = time.perf_counter()
    info = ImageInfo(
        width=image.width,
        height=image.height,
        bytes_in=image.bytes_in,
        bytes_sent=len(image.data),
    )
    sha256 = digest(image.data)
    invocation.note(input_digest=sha256)
    if upload is not None:
        cache.remember(upload, {"sha256": sha256, "image": info.model_dump()})
    attempts = 0  # Gemini calls made for this request (0: answered from the cache)

    def ask_gemini() -> dict[str, Any]:
        nonlocal attempts
        result = analyze_with_gemini(
            image,
            tier=body.speed,
            image_type=body.image_type,
            settings=settings,
            remaining_ms=invocation.remaining_ms,
        )
        usage = result.usage
        metrics.add_metric(name="InputTokens", unit=MetricUnit.Count, value=usage.input_tokens)
        metrics.add_metric(name="OutputTokens", unit=MetricUnit.Count, value=usage.output_tokens)
        metrics.add_metric(
            name="ThinkingTokens", unit=MetricUnit.Count, value=usage.thinking_tokens
        )
        attempts = result.attempts
        return {
            "analysis": result.analysis.model_dump(mode="json"),
            "model": result.model,
            "usage": usage.model_dump(mode="json"),
        }

    # What Gemini answered for this image, speed and type (the cached part of the answer;
    # the image facts, timings and request id are this request's).
    answer = cache.cached_json(question(sha256), ask_gemini, _usable)
    return _answer(body, answer, info, started, prepared, attempts)


def _usable(answer: dict[str, Any]) -> bool:
    """Whether a cached value is an answer `_answer` can serve (a corrupt item is not)."""
    Analysis.model_validate(answer["analysis"])
    Usage.model_validate(answer["usage"])
    return isinstance(answer["model"], str)


def _answer(
    body: AnalyzeRequest,
    answer: dict[str, Any],
    info: ImageInfo,
    started: float,
    prepared: float,
    attempts: int,
) -> AnalyzeResponse:
    """The 200 answer around `answer` ({analysis, model, usage}), logged and measured."""
    invocation = current()
    usage = Usage.model_validate(answer["usage"])
    answered = time.perf_counter()
    invocation.note(model=answer["model"], model_version=answer["model"])
    if attempts:
        # Tokens this request spent (a cached answer's were spent by the request it
        # cached); thinking is billed as output.
        invocation.note(
            tokens_in=usage.input_tokens,
            tokens_out=usage.output_tokens + usage.thinking_tokens,
        )
    timings = Timings(
        prepare=round((prepared - started) * 1000, 1),
        model=round((answered - prepared) * 1000, 1),
        total=round(invocation.elapsed_ms(), 1),
    )
    logger.info(
        "analysis complete",
        extra={
            "model": answer["model"],
            "speed": body.speed,
            "attempts": attempts,
            "cache": cache.state(),
            "latency_ms": timings.total,
            "prepare_ms": timings.prepare,
            "model_ms": timings.model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "thinking_tokens": usage.thinking_tokens,
            "bytes_in": info.bytes_in,
            "bytes_sent": info.bytes_sent,
        },
    )
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=timings.total)
    metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=timings.model)
    metrics.add_metric(name="BytesSent", unit=MetricUnit.Bytes, value=info.bytes_sent)
    return AnalyzeResponse(
        analysis=Analysis.model_validate(answer["analysis"]),
        model=answer["model"],
        usage=usage,
        image=info,
        timings_ms=timings,
        request_id=invocation.request_id,
    )


@router.get("/health", summary="Status, version and configured models", tags=["service"])
def health() -> HealthResponse:
    settings = get_settings()
    key = key_status()
    return HealthResponse(
        status="ok",
        version=lens.__version__,
        models=dict(settings.models),
        gemini=GeminiHealth(configured=key.configured, key_source=key.kind, reason=key.reason),
        offline_models=list(predict.loaded_models()),
    )
