"""SageMaker's serving contract: which model an /invocations request is for.

SageMaker sends every prediction to POST /invocations. The model is named by the header
`X-Amzn-SageMaker-Custom-Attributes: model=<name>` (what InvokeEndpoint's CustomAttributes
carries), else by a `model` field of the JSON body (removed before the model sees the
body, also when the header names the same model; 400 model_conflict when it names
another), else it is the endpoint's only model: the one SCARAB_ENDPOINT_MODELS names, or the
registry's only model when that is unset. The request then runs as POST /predict/<name>
(with `?version=<v>` when the header also says `version=<v>`) through the same handler
as every other route.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from lens.errors import ApiError

ENDPOINT_MODELS_ENV = "SCARAB_ENDPOINT_MODELS"
ATTRIBUTES_HEADER = "x-amzn-sagemaker-custom-attributes"
_ATTRIBUTE = re.compile(r"\s*([^=,;\s]+)\s*=\s*([^,;]*)")


def endpoint_models() -> list[str]:
    """The models SCARAB_ENDPOINT_MODELS names (comma-separated), in order; [] when unset."""
    raw = os.environ.get(ENDPOINT_MODELS_ENV, "")
    return [name for name in (part.strip() for part in raw.split(",")) if name]


def header_attribute(attributes: str | None, key: str) -> str | None:
    """`<key>=<value>` from the custom attributes header ('a=1, model=x': model -> 'x');
    the first one wins."""
    for found, value in _ATTRIBUTE.findall(attributes or ""):
        if str(found).lower() == key and str(value).strip():
            return str(value).strip()
    return None


def header_model(attributes: str | None) -> str | None:
    """`model=<name>` from the custom attributes header ('a=1, model=x' -> 'x')."""
    return header_attribute(attributes, "model")


@dataclass(frozen=True)
class Invocation:
    """The model an /invocations request is for, and the body to send it."""

    model: str
    body: bytes
    # `version=<v>` of the header (the forwarding models function pins the version it
    # was asked for): run as POST /predict/<model>?version=<v>.
    version: str | None = None


def choose(
    attributes: str | None, body: bytes, served: Sequence[str], registered: Sequence[str]
) -> Invocation:
    """The model and body of an /invocations request. `served`: SCARAB_ENDPOINT_MODELS
    ([]: every registered model is served); `registered`: the registry's model names.
    404 unknown_model for a model the endpoint does not serve, 400 model_required when
    none is named and the endpoint serves several."""
    name = header_model(attributes)
    fields = _json_object(body)
    named = fields.pop("model", None) if fields is not None else None
    if isinstance(named, str):
        # The body's `model` is the contract's, never a feature: removed whenever it names
        # the model (InvokeEndpoint may carry the header too), refused when it disagrees.
        if name is not None and named != name:
            raise ApiError(
                400,
                "model_conflict",
                f"The header X-Amzn-SageMaker-Custom-Attributes names model '{name[:64]}' and"
                f" the body's model field '{named[:64]}'; name one, or the same in both.",
            )
        name = named
        body = json.dumps(fields).encode()
    offered = list(served) or list(registered)
    if name is None:
        if len(offered) != 1:
            listed = ", ".join(offered) or "none"
            raise ApiError(
                400,
                "model_required",
                "Name the model: the header X-Amzn-SageMaker-Custom-Attributes: model=<name>, "
                f"or a model field in the body; this endpoint serves {listed}.",
            )
        name = offered[0]
    elif served and name not in served:
        raise ApiError(
            404,
            "unknown_model",
            f"There is no model '{name[:64]}' on this endpoint; it serves {', '.join(served)}.",
        )
    return Invocation(name, body, header_attribute(attributes, "version"))


def _json_object(body: bytes) -> dict[str, object] | None:
    """The body as a JSON object, or None (anything else is for the model to refuse)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
