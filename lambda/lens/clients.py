"""boto3 clients for uploads and jobs, one per service and endpoint, made on first use.

boto3 is imported lazily (the Lambda runtime ships it; no zip carries it). A client is
kept per (service, endpoint variables, region), so a test or `scarab serve` that points
AWS_ENDPOINT_URL_<SERVICE> elsewhere gets a client for that endpoint.
"""

from __future__ import annotations

import os
import threading
from typing import Any

_clients: dict[tuple[str, ...], Any] = {}
_lock = threading.Lock()


def endpoint_url(service: str) -> str:
    """The endpoint boto3 will use for `service` from the environment ('' for AWS's)."""
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}", "").strip()
    return specific or os.environ.get("AWS_ENDPOINT_URL", "").strip()


def client(service: str) -> Any:
    """The process's client for `service` (s3, dynamodb, lambda) with short timeouts."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    endpoint = endpoint_url(service)
    key = (service, endpoint, region)
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = _clients[key] = _make(service, endpoint)
        return found


def _make(service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {
        "connect_timeout": 2,
        "read_timeout": 10,
        "retries": {"max_attempts": 3, "mode": "standard"},
    }
    if service == "s3":
        options["signature_version"] = "s3v4"
        if endpoint:
            # A local endpoint (moto, scarab serve's /_s3) serves buckets by path; AWS by
            # virtual host (the presigned POST URL names the bucket's own host).
            options["s3"] = {"addressing_style": "path"}
    return boto3.client(service, config=Config(**options))


def reset_clients() -> None:
    """Forget every client (tests, after credentials change)."""
    with _lock:
        _clients.clear()
