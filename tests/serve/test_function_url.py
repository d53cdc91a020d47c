"""Function URLs through a real `scarab serve`: /_url/<function>/... with the URL's CORS
answered by the gateway layer and SigV4 checked for auth AWS_IAM."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from scarab.emulator import FAKE_CREDENTIALS
from scarab.serve.function_url import SIGNATURE_SKEW_S, signature_valid
from scarab.serve.proxy_event import IncomingRequest

from tests.serve.support import DEFAULT_TOML, Response, http, make_project
from tests.support.serve_process import ServeProcess, scarab_cli, start_serve

pytestmark = pytest.mark.emulator

TOML = (
    DEFAULT_TOML
    + """
[functions.analyze.url]
auth = "AWS_IAM"

[functions.models.url]
auth = "NONE"
[functions.models.url.cors]
allow_origins = ["https://dash.example.com"]
allow_methods = ["GET", "POST"]
allow_headers = ["content-type", "x-custom"]
max_age = 600
"""
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One serve for the module: every test here only reads."""
    project = make_project(tmp_path_factory.mktemp("furl") / "p", toml=TOML, web=False)
    proc = start_serve(project, env={"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None})
    yield proc
    proc.stop()
    print(f"--- scarab serve output ({proc.project_dir}) ---\n{proc.output()}")


def signed(
    url: str, method: str = "GET", body: bytes = b"", secret: str | None = None
) -> dict[str, str]:
    """Headers of a request signed as an AWS SDK signs a Function URL call (service
    lambda), with the emulator's credentials or another secret."""
    creds = Credentials(
        FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret or FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(creds, "lambda", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def base(serve: ServeProcess) -> str:
    return serve.api_url.rsplit("/", 1)[0]


def forbidden(response: Response) -> bool:
    return response.status == 403 and response.json() == {"Message": "Forbidden"}


def test_a_signed_request_passes_an_iam_url(served: ServeProcess) -> None:
    url = f"{base(served)}/_url/scarab-dev-analyze/health"
    got = http(url, headers=signed(url))
    assert got.status == 200, got.body
    assert got.json()["status"] == "ok"


def test_an_unsigned_request_gets_403(served: ServeProcess) -> None:
    assert forbidden(http(f"{base(served)}/_url/scarab-dev-analyze/health"))


def test_a_wrongly_signed_request_gets_403(served: ServeProcess) -> None:
    url = f"{base(served)}/_url/scarab-dev-analyze/health"
    assert forbidden(http(url, headers=signed(url, secret="not-the-secret")))
    # Signed for another path: the signature covers what was sent, not what was signed.
    other = signed(f"{base(served)}/_url/scarab-dev-analyze/openapi.json")
    assert forbidden(http(url, headers=other))
    # A signed body that was swapped on the way.
    post = signed(url, "POST", b'{"a": 1}')
    assert forbidden(http(url, "POST", b'{"a": 2}', post))


def test_a_public_url_needs_no_signature(served: ServeProcess) -> None:
    got = http(f"{base(served)}/_url/scarab-dev-models/models")
    assert got.status == 200, got.body
    assert "models" in got.json()


def test_the_preflight_is_answered_from_the_url_config(served: ServeProcess) -> None:
    url = f"{base(served)}/_url/scarab-dev-models/predict/digits"
    got = http(
        url,
        "OPTIONS",
        headers={
            "Origin": "https://dash.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert got.status == 200 and got.body == b""
    assert got.headers["access-control-allow-origin"] == "https://dash.example.com"
    assert got.headers["access-control-allow-methods"] == "GET,POST"
    assert got.headers["access-control-allow-headers"] == "content-type,x-custom"
    assert got.headers["access-control-max-age"] == "600"
    # An origin the URL does not list gets no CORS headers at all.
    other = http(
        url,
        "OPTIONS",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert not [k for k in other.headers if k.startswith("access-control-")]


def test_an_answer_carries_the_urls_cors(served: ServeProcess) -> None:
    got = http(
        f"{base(served)}/_url/scarab-dev-models/models",
        headers={"Origin": "https://dash.example.com"},
    )
    assert got.status == 200
    allow = [v for k, v in got.header_list if k == "access-control-allow-origin"]
    assert allow == ["https://dash.example.com"]


def test_a_function_without_a_url_is_not_found(served: ServeProcess) -> None:
    got = http(f"{base(served)}/_url/scarab-dev-nothing/health")
    assert got.status == 404


def test_deploy_recorded_both_urls(served: ServeProcess) -> None:
    state = (Path(served.project_dir) / ".scarab" / "local" / "state").glob("*.json")
    text = "".join(p.read_text() for p in state)
    assert text.count(".lambda-url.") == 2


def test_status_and_deploy_show_where_serve_answers_the_urls(served: ServeProcess) -> None:
    shown = scarab_cli(served.project_dir, "status", "--json", "--local", check=True)
    functions = json.loads(shown.stdout)["functions"]
    models_url = f"{base(served)}/_url/scarab-dev-models/"
    assert functions["models"]["url"] == models_url
    assert functions["analyze"]["url"] == f"{base(served)}/_url/scarab-dev-analyze/"
    # The URL shown answers (auth NONE: no signature needed).
    assert http(f"{models_url}models").status == 200
    deployed = scarab_cli(served.project_dir, "deploy", "--local", check=True)
    assert f"models function url: {models_url}" in deployed.stdout


def _signed_at(url: str, when: datetime.datetime) -> IncomingRequest:
    """A GET of `url` signed as of `when` (botocore's own steps, with that timestamp)."""
    auth = SigV4Auth(
        Credentials(*(FAKE_CREDENTIALS[k] for k in ("AWS_ACCESS_KEY_ID",
                      "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))),
        "lambda", "us-east-1",
    )  # fmt: skip
    request = AWSRequest(method="GET", url=url)
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    auth._inject_signature_to_request(
        request, auth.signature(auth.string_to_sign(request, canonical), request)
    )
    parts = urlsplit(url)
    headers = [(k.lower(), v) for k, v in request.headers.items()]
    return IncomingRequest(
        method="GET", path=parts.path, raw_query=parts.query,
        headers=[("host", parts.netloc), *headers], body=b"", source_ip="127.0.0.1",
        host=parts.netloc, port=parts.port or 80,
    )  # fmt: skip


def test_a_signature_older_than_sigv4_allows_is_refused() -> None:
    url = "http://127.0.0.1:3000/_url/scarab-dev-analyze/health"
    now = datetime.datetime.now(datetime.UTC)
    path = urlsplit(url).path
    assert signature_valid(_signed_at(url, now), path, "us-east-1")
    assert not signature_valid(_signed_at(url, now), path, "eu-west-1")
    stale = now - datetime.timedelta(seconds=SIGNATURE_SKEW_S + 60)
    assert not signature_valid(_signed_at(url, stale), path, "us-east-1")
