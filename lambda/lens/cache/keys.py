"""Cache keys: the route and a sha256 of exactly what decides its answer (pure).

/analyze: the digest of the PREPARED image (what Gemini sees: two uploads that prepare
to the same bytes are the same question), the speed tier, the image type, the model,
its thinking setting, a digest of the prompt's words and the lens version (the response
schema travels with it). /predict and /forecast: the model's name, version and artifact
sha256, a digest of its whole registry entry (host, threshold, ...), and the validated
input (so `{"features": [...]}` and the same values by name are one key). A key never
holds the input itself, only digests.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Bumped when the shape of a cached value changes, so old entries are never read.
KEY_FORMAT = "1"


def digest(data: bytes) -> str:
    """sha256 hex of `data`."""
    return hashlib.sha256(data).hexdigest()


def canonical(value: Any) -> bytes:
    """`value` as canonical JSON bytes: sorted keys, no spaces, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _key(route: str, parts: dict[str, Any]) -> str:
    return f"{route}:{digest(canonical({'format': KEY_FORMAT, **parts}))}"


def analyze_key(
    image_sha256: str,
    *,
    speed: str,
    image_type: str,
    model: str,
    thinking: str | int,
    prompt: str,
    version: str,
) -> str:
    """The key of an /analyze answer for the prepared image whose sha256 is given."""
    return _key(
        "analyze",
        {
            "image": image_sha256,
            "speed": speed,
            "imageType": image_type,
            "model": model,
            "thinking": thinking,
            "prompt": digest(prompt.encode("utf-8")),
            "lens": version,
        },
    )


def upload_key(upload: bytes, preparation: dict[str, Any]) -> str:
    """The key of what an upload prepares to: the upload as sent and every setting that
    decides the preparation (the same upload prepared the same way gives the same bytes)."""
    return _key("upload", {"upload": digest(upload), "preparation": preparation})


def prediction_key(
    route: str, *, model: str, version: str, sha256: str, inputs: Any, entry: Any = None
) -> str:
    """The key of a /predict or /forecast answer: the model version and its input
    (`inputs` JSON-able: the validated request, dumped in JSON mode). `entry`: the whole
    registry entry (JSON-able), since more of it than the bytes decides the answer (its
    host, threshold, positive label, the metrics a forecast returns), and a version
    removed and pushed again with the same bytes may differ in those."""
    parts = {
        "model": model,
        "version": version,
        "sha256": sha256,
        "input": digest(canonical(inputs)),
    }
    if entry is not None:
        parts["entry"] = digest(canonical(entry))
    return _key(route, parts)
