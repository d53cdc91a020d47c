"""Versions and a `live` alias made with boto3 on a function a real deploy created (until
deploy publishes them itself), and the alias as the tests read it back."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from tests.deploy.conftest import ANALYZE, client
from tests.support.moto_server import MotoServer


def _code(n: int) -> bytes:
    """A small zip whose bytes (and so CodeSha256) differ for each `n`."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("lens/__init__.py", f"VERSION = {n}\n")
    return buf.getvalue()


def publish(aws: MotoServer, count: int, function: str = ANALYZE) -> list[dict[str, Any]]:
    """Publish `count` versions of `function`, each with its own code and a commit in its
    description; returns PublishVersion's answers."""
    lam = client("lambda", aws)
    out = []
    for n in range(1, count + 1):
        lam.update_function_code(FunctionName=function, ZipFile=_code(n))
        out.append(lam.publish_version(FunctionName=function, Description=f"commit=c0ffee{n}"))
    return out


def make_live(
    aws: MotoServer, version: str, weights: dict[str, float] | None = None, function: str = ANALYZE
) -> None:
    """Create the `live` alias on `version` (with a RoutingConfig when `weights`)."""
    extra = {"RoutingConfig": {"AdditionalVersionWeights": weights}} if weights else {}
    client("lambda", aws).create_alias(
        FunctionName=function, Name="live", FunctionVersion=version, **extra
    )


def alias(aws: MotoServer, function: str = ANALYZE) -> tuple[str, dict[str, float]]:
    """(version, additional version weights) of `function`'s `live` alias."""
    got = client("lambda", aws).get_alias(FunctionName=function, Name="live")
    weights = (got.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return got["FunctionVersion"], dict(weights)
