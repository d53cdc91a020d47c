"""Helpers for the serve tests: a throwaway project, HTTP calls, the probe function."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parents[2]
PROBE_SOURCE = Path(__file__).parent / "probe" / "probe.py"

# High limits for the shared stage, so traffic tests never hit them by accident;
# the throttle and quota tests make their own plans.
DEFAULT_TOML = """\
app = "scarab"
stage = "dev"

[function]
timeout = 30

[api]
throttle_rate = 5000
throttle_burst = 5000
quota_limit = 10000000
quota_period = "DAY"

# Off: these stages script Gemini per request, and a cached answer would skip the script
# (tests/serve/test_cache.py runs stages with the cache on).
[cache]
ttl_seconds = 0
"""


def make_project(root: Path, toml: str = DEFAULT_TOML, web: bool = True) -> Path:
    """A project directory: scarab.toml, a copy of the function source, the web client."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "scarab.toml").write_text(toml)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "lambda", root / "lambda", ignore=ignore)
    if web and (REPO / "web-client" / "public").is_dir():
        shutil.copytree(
            REPO / "web-client" / "public", root / "web-client" / "public", ignore=ignore
        )
    return root


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names (the last of repeated headers)
    body: bytes
    header_list: list[tuple[str, str]]

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> Response:
    """One HTTP request; error statuses are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            items = [(k.lower(), v) for k, v in resp.headers.items()]
            return Response(resp.status, dict(items), resp.read(), items)
    except urllib.error.HTTPError as err:
        items = [(k.lower(), v) for k, v in err.headers.items()]
        return Response(err.code, dict(items), err.read(), items)


def tiny_jpeg_b64() -> str:
    """A small valid JPEG, base64: what the page sends to /analyze."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (120, 90, 60)).save(buf, "JPEG")
    return base64.b64encode(buf.getvalue()).decode()


def emulator_url(project: Path) -> str:
    return str(json.loads((project / ".scarab" / "local" / "emulator.json").read_text())["url"])


def clients(project: Path) -> tuple[Any, Any]:
    """apigateway and lambda clients on the emulator serve started for `project`."""
    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    url = emulator_url(project)
    return session.client("apigateway", endpoint_url=url), session.client(
        "lambda", endpoint_url=url
    )


def state(project: Path, stage: str = "dev") -> dict[str, Any]:
    path = project / ".scarab" / "local" / "state" / f"{stage}.json"
    return dict(json.loads(path.read_text()))


def probe_zip(project: Path) -> bytes:
    """The probe's zip, stored where the deploy tool keeps content-addressed zips."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("probe.py", date_time=(2020, 1, 1, 0, 0, 0))
        zf.writestr(info, PROBE_SOURCE.read_bytes())
    data = buf.getvalue()
    target = project / ".scarab" / "build" / "zip" / f"{hashlib.sha256(data).hexdigest()}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return data


def install_probe(
    project: Path,
    name: str,
    path_part: str,
    *,
    timeout: int = 30,
    env: Mapping[str, str] | None = None,
    api_key_required: bool = False,
) -> str:
    """Deploy the probe as its own function behind `/{path_part}/{proxy+}` (ANY)."""
    apigw, lam = clients(project)
    st = state(project)
    role = st["functions"]["models"]["role_arn"]
    fn = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="probe.handler",
        Code={"ZipFile": probe_zip(project)},
        Timeout=timeout,
        MemorySize=256,
        Environment={"Variables": dict(env or {"PROBE_VAR": "one"})},
    )
    api_id = st["rest_api_id"]
    root = next(r for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    parent = apigw.create_resource(restApiId=api_id, parentId=root["id"], pathPart=path_part)
    proxy = apigw.create_resource(restApiId=api_id, parentId=parent["id"], pathPart="{proxy+}")
    apigw.put_method(
        restApiId=api_id,
        resourceId=proxy["id"],
        httpMethod="ANY",
        authorizationType="NONE",
        apiKeyRequired=api_key_required,
    )
    apigw.put_integration(
        restApiId=api_id,
        resourceId=proxy["id"],
        httpMethod="ANY",
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{fn['FunctionArn']}/invocations",
    )
    apigw.create_deployment(restApiId=api_id, stageName="dev")
    return str(fn["FunctionArn"])
