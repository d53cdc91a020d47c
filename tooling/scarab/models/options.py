"""The options of `scarab models push`, checked before anything is converted or sent."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

from scarab.models import Refused

# A version: what a person types for one ("1", "2024.1", "1.0.0-rc1"); never the
# aliases item's "~aliases".
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


def check_name(name: str) -> None:
    """The function's rule for model names (lens.predict.registry.ModelEntry.name)."""
    from lens.predict.registry import ModelEntry

    pattern = ModelEntry.model_json_schema()["properties"]["name"]["pattern"]
    if not re.fullmatch(pattern, name):
        raise Refused(
            f"--name {name!r}: a model name is 1-64 lowercase letters, digits, '-' or '_',"
            " starting with a letter."
        )


def check_version(version: str) -> None:
    if not VERSION.fullmatch(version):
        raise Refused(
            f"--version {version!r}: a version is 1-64 letters, digits, '.', '_', '+' or '-',"
            " starting with a letter or digit."
        )


def check_host(host: str | None) -> str | None:
    """`--host sagemaker:<endpoint>`, by the function's rule (lens.predict.registry:
    SageMaker's endpoint names: letters, digits and inner hyphens, at most 63)."""
    from lens.predict.registry import ENDPOINT_NAME_PATTERN, SAGEMAKER_HOST

    if host is None:
        return None
    endpoint = host.removeprefix(SAGEMAKER_HOST)
    if not host.startswith(SAGEMAKER_HOST):
        raise Refused(
            f"--host {host!r}: say where the model is hosted as sagemaker:<endpoint name>"
            " (leave --host out for a model the function runs itself)."
        )
    if not re.fullmatch(ENDPOINT_NAME_PATTERN, endpoint):
        raise Refused(
            f"--host {host!r}: a SageMaker endpoint name is 1-63 letters, digits and"
            " hyphens, starting and ending with a letter or digit."
        )
    return host


def check_kind(kind: str | None) -> str | None:
    from lens.predict.registry import Kind

    kinds = get_args(Kind)
    if kind is not None and kind not in kinds:
        raise Refused(f"--kind {kind!r}: use one of {', '.join(kinds)}.")
    return kind


def parse_labels(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    labels = [label.strip() for label in raw.split(",")]
    if not all(labels) or len(set(labels)) != len(labels):
        raise Refused(f"--labels {raw!r}: give distinct, non-empty labels separated by commas.")
    return labels


def read_json_object(path: Path | None, option: str) -> dict[str, Any] | None:
    """The JSON object in `path` (None when the option was not given)."""
    if path is None:
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise Refused(f"{option} {path}: {exc.strerror or exc}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(f"{option} {path} is not JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise Refused(f"{option} {path} must hold a JSON object.")
    return value


def check_decision(
    kind: str, labels: list[str], threshold: float | None, positive_label: str | None
) -> None:
    """--threshold and --positive-label: only for a binary tabular classifier, and the
    positive label one of its labels."""
    given = [
        option
        for option, value in (("--threshold", threshold), ("--positive-label", positive_label))
        if value is not None
    ]
    if not given:
        return
    # Only tabular classifiers apply the rule (lens.predict.tabular); an image classifier
    # answers its likeliest label whatever a threshold says.
    if kind != "tabular-classifier" or len(labels) != 2:
        article = "an" if kind[:1] in "aeiou" else "a"
        what = (
            f"has {len(labels)} classes" if kind == "tabular-classifier" else f"is {article} {kind}"
        )
        verb = "apply" if len(given) > 1 else "applies"
        raise Refused(f"{' and '.join(given)} {verb} to a binary classifier; this model {what}.")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise Refused(f"--threshold {threshold}: give a probability from 0 to 1.")
    if positive_label is not None and positive_label not in labels:
        raise Refused(
            f"--positive-label {positive_label!r} is not one of the labels ({', '.join(labels)})."
        )
