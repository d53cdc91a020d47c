"""What an emulated SageMaker endpoint runs: the handler of serve's endpoint workers.

It runs in a worker process (scarab.serve.worker) with the models function's code and
environment, so it reads the same registry (MODEL_REGISTRY_TABLE in the emulator) and
answers with the same core (lens.predict.routes.predict_here). The endpoint serves the
registry's models whose `host` is `sagemaker:<endpoint>`; the request names one by
CustomAttributes `model=<name>` or a `model` field in the body, else the only one, and
a version by `version=<v>` (what the models function resolved; else the live one).

Event: {"endpoint": str, "attributes": str, "body": str}. Result: {"status": <the
container's HTTP status>, "body": <its JSON>}, or {"missing": true} when no registered
model names this endpoint (SageMaker: the endpoint does not exist).
"""

from __future__ import annotations

from typing import Any


def _named(attributes: str, wanted: str = "model") -> str | None:
    """`<wanted>=<value>` out of CustomAttributes (`k=v` pairs separated by commas or ;)."""
    for part in attributes.replace(";", ",").split(","):
        key, _, value = part.partition("=")
        if key.strip() == wanted and value.strip():
            return value.strip()
    return None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from lens.errors import ApiError
    from lens.intake import parse_json
    from lens.predict import sources
    from lens.predict.routes import predict_here

    endpoint = str(event.get("endpoint") or "")
    request_id = getattr(context, "aws_request_id", None)
    try:
        view = sources.current()
    except sources.RegistryUnavailable:
        return {"busy": True}
    hosted = {}
    for known in view.names():
        model = view.get(known)
        entry = sources.choose(model, sources.rng()) if model else None
        if entry is not None and entry.endpoint == endpoint:
            hosted[known] = entry
    if not hosted:
        return {"missing": True}
    try:
        body = parse_json(str(event.get("body") or ""))
    except ValueError:
        error = ApiError(400, "malformed_json", "The request body is not valid JSON.")
        return {"status": error.status, "body": error.body(request_id)}
    try:
        name: str | None = _named(str(event.get("attributes") or ""))
        if name is None and isinstance(body, dict) and isinstance(body.get("model"), str):
            name = str(body.pop("model"))
        if name is None and len(hosted) == 1:
            name = next(iter(hosted))
        if name is None or name not in hosted:
            raise ApiError(
                404,
                "unknown_model",
                f"This endpoint serves {', '.join(sorted(hosted))}; name one with the custom"
                " attribute model=<name>.",
            )
        entry = hosted[name]
        # The version the models function resolved (`version=`), when it names one.
        version = _named(str(event.get("attributes") or ""), "version")
        model = view.get(name)
        if version is not None and version != entry.version:
            pinned = model.versions.get(version) if model is not None else None
            if pinned is None or pinned.endpoint != endpoint:
                raise ApiError(
                    404,
                    "model_not_found",
                    f"This endpoint has no version '{version[:64]}' of model '{name}'.",
                )
            entry = pinned
        return {"status": 200, "body": predict_here(entry, body)}
    except ApiError as exc:
        return {"status": exc.status, "body": exc.body(request_id)}
