"""`scarab invoke`: call the deployed API (or a running `scarab serve`) with an image."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scarab.aws import Aws
from scarab.config import ScarabConfig
from scarab.errors import ScarabError
from scarab.keys import get_key_value, list_keys
from scarab.serve.record import ServeRecord
from scarab.speeds import DEFAULT_SPEED
from scarab.status import status


@dataclass
class InvokeResult:
    url: str
    status: int
    body: Any


def running_serve(project_dir: Path) -> str | None:
    """The API URL of a running `scarab serve` (its ServeRecord), if it answers."""
    record = ServeRecord.read(project_dir)
    if record is None:
        return None
    url = record.api_url
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=3):  # noqa: S310
            return url
    except urllib.error.HTTPError:
        return url
    except OSError:
        return None


def invoke(
    config: ScarabConfig,
    image: Path,
    *,
    project_dir: Path,
    speed: str = DEFAULT_SPEED,
    endpoint_url: str | None = None,
    aws: Aws | None = None,
    base_url: str | None = None,
    key_id: str | None = None,
    timeout: float = 60.0,
) -> InvokeResult:
    """POST the image to /analyze with one of the stage's enabled keys."""
    try:
        data = image.read_bytes()
    except OSError as exc:
        raise ScarabError(f"Cannot read the image {image}: {exc.strerror}.") from None
    if base_url is None:
        base_url = str(
            status(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)["url"]
        )
    if key_id is None:
        usable = [
            k
            for k in list_keys(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)
            if k.enabled and k.in_plan
        ]
        if not usable:
            raise ScarabError("The stage has no enabled API key; run 'scarab keys create'.")
        key_id = usable[-1].id
    key = get_key_value(config, key_id, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)
    body = json.dumps({"image": base64.b64encode(data).decode(), "speed": speed}).encode()
    url = f"{base_url.rstrip('/')}/analyze"
    req = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
    req.add_header("Content-Type", "application/json")
    req.add_header("x-api-key", key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return InvokeResult(url, resp.status, _parse(resp.read()))
    except urllib.error.HTTPError as exc:
        return InvokeResult(url, exc.code, _parse(exc.read()))
    except OSError as exc:
        raise ScarabError(f"Cannot reach {url}: {exc}. Is the stage deployed?") from None


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
