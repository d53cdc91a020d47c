"""Review 8: attacks on the Function URLs `scarab serve` answers at /_url/<function>/...

Each test that fails today names, in its docstring, what breaks and why it matters. The
module shares one serve; the tests that change the deployed stack run last (file order).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from scarab.deploy.models import URL_PERMISSION_SID
from scarab.emulator import FAKE_CREDENTIALS

from tests.serve.support import DEFAULT_TOML, Response, clients, http, make_project
from tests.support.serve_process import ServeProcess, start_serve

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
allow_headers = ["content-type"]
max_age = 0
"""
)
ANALYZE = "scarab-dev-analyze"
MODELS = "scarab-dev-models"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    project = make_project(tmp_path_factory.mktemp("r8furl") / "p", toml=TOML, web=False)
    proc = start_serve(project, env={"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None})
    yield proc
    proc.stop()
    print(f"--- scarab serve output ({proc.project_dir}) ---\n{proc.output()}")


def base(serve: ServeProcess) -> str:
    return serve.api_url.rsplit("/", 1)[0]


def sign(
    request: AWSRequest, token: str | None = FAKE_CREDENTIALS["AWS_SESSION_TOKEN"]
) -> dict[str, str]:
    """Sign `request` as an AWS SDK signs a Function URL call (service lambda) with the
    emulator's key and secret; return the headers to send."""
    creds = Credentials(
        FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], token
    )
    SigV4Auth(creds, "lambda", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def forbidden(response: Response) -> bool:
    return response.status == 403 and response.json() == {"Message": "Forbidden"}


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    """True once `check()` is (the snapshot refreshes on its own clock), False at timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_review8_control_a_signed_get_passes(served: ServeProcess) -> None:
    """Control for the attacks below: a request botocore signs normally passes."""
    url = f"{base(served)}/_url/{ANALYZE}/health"
    got = http(url, headers=sign(AWSRequest(method="GET", url=url)))
    assert got.status == 200, got.body


def test_review8_unsigned_payload_lets_a_signed_body_be_swapped(served: ServeProcess) -> None:
    """BREAKS: `X-Amz-Content-SHA256: UNSIGNED-PAYLOAD` switches the body check off
    (function_url.signature_valid), so anyone who sees one signed POST to an AWS_IAM URL
    can resend it, within the 15 minutes, with any body they like and it is accepted.
    Lambda Function URLs do not support unsigned payloads (AWS: "Lambda doesn't support
    unsigned payloads"); the local gateway must refuse it with 403, as AWS does."""
    url = f"{base(served)}/_url/{ANALYZE}/health"
    request = AWSRequest(
        method="POST",
        url=url,
        data=b'{"what": "the signer meant"}',
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )
    headers = sign(request)
    got = http(url, "POST", b'{"what": "an attacker sent instead"}', headers)
    assert forbidden(got), (got.status, got.body[:200])


def test_review8_a_spec_canonical_query_is_refused(served: ServeProcess) -> None:
    """BREAKS: serve builds the canonical query string from the raw bytes received
    (botocore's `_canonical_query_string_url` takes the URL's query as it is), while
    SigV4 (and AWS) canonicalise it: decode, then URI-encode every byte but A-Z a-z 0-9
    -_.~. A client that signs the canonical form but sends `'` unencoded (aws-sdk-js v3
    does: the URL uses encodeURIComponent, the signer RFC 3986) is accepted by AWS and
    refused with 403 by serve. Here the canonical form comes from botocore's own
    params path (`q=it%27s`); the request goes out as `?q=it's`."""
    path = f"{base(served)}/_url/{ANALYZE}/health"
    request = AWSRequest(method="GET", url=path, params={"q": "it's"})
    headers = sign(request)
    got = http(f"{path}?q=it's", headers=headers)
    assert got.status == 200, (got.status, got.body[:200])


def test_review8_a_session_token_from_elsewhere_is_accepted(served: ServeProcess) -> None:
    """BREAKS (low): the session token is never compared; a signature made with the key
    and secret but another credential set's X-Amz-Security-Token passes. On AWS the
    token belongs to the key pair (temporary credentials): a foreign token is 403. A
    test of "only the emulator's credentials pass" can be fooled by a stale token."""
    url = f"{base(served)}/_url/{ANALYZE}/health"
    headers = sign(AWSRequest(method="GET", url=url), token="a-token-of-another-session")
    got = http(url, headers=headers)
    assert forbidden(got), (got.status, got.body[:200])


def test_review8_max_age_zero_is_not_sent(served: ServeProcess) -> None:
    """BREAKS (low): `max_age = 0` (AWS: "0, which means that the browser doesn't cache
    results") sends no Access-Control-Max-Age at all (function_url.preflight tests
    `if cors.get("MaxAge")`), so browsers fall back to their default (5 s in Chromium
    and Firefox): a CORS change is not seen at once, unlike what was configured."""
    got = http(
        f"{base(served)}/_url/{MODELS}/models",
        "OPTIONS",
        headers={"Origin": "https://dash.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert got.status == 200
    assert got.headers.get("access-control-allow-origin") == "https://dash.example.com"
    assert got.headers.get("access-control-max-age") == "0", got.headers


@pytest.mark.parametrize(
    "authorization",
    [
        "garbage",
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 " + "x" * 30000,
        "\u00e9\u00e9",
    ],
)
def test_review8_authorization_garbage_is_403(served: ServeProcess, authorization: str) -> None:
    """Holds: a malformed or huge Authorization header is a plain 403, never a 500."""
    url = f"{base(served)}/_url/{ANALYZE}/health"
    got = http(url, headers={"Authorization": authorization, "X-Amz-Date": "20260101T000000Z"})
    assert got.status in (403, 431, 400), (got.status, got.body[:200])
    assert got.status != 403 or forbidden(got)


def test_review8_replayed_with_another_method_is_403(served: ServeProcess) -> None:
    """Holds: a signed GET's headers sent with DELETE (or to another function) are 403."""
    url = f"{base(served)}/_url/{ANALYZE}/health"
    headers = sign(AWSRequest(method="GET", url=url))
    assert forbidden(http(url, "DELETE", headers=headers))
    # A signature for one function's URL does not open another's.
    other = f"{base(served)}/_url/{MODELS}/health"
    assert http(other, headers=headers).status != 500


# The tests below change the deployed stack; they run last.


def test_review8_a_public_url_whose_grant_was_removed_still_answers(
    served: ServeProcess,
) -> None:
    """BREAKS: serve answers an auth NONE URL whatever its resource policy says. Remove
    scarab's public grant (URL_PERMISSION_SID) by hand and AWS answers every caller 403
    (planner_url says so itself: "Lambda answers 403 to everyone until the URL may be
    invoked publicly"), but serve keeps answering 200: locally it works, deployed it is
    down, and nothing local shows why. serve should read the policy like it reads the
    URL config (watcher.load_snapshot) and answer 403 {"Message": "Forbidden"}."""
    url = f"{base(served)}/_url/{MODELS}/models"
    assert http(url).status == 200
    _, lam = clients(served.project_dir)
    lam.remove_permission(FunctionName=MODELS, StatementId=URL_PERMISSION_SID)
    assert eventually(lambda: forbidden(http(url))), "still answered without the public grant"


def test_review8_auth_switched_under_traffic_is_enforced(served: ServeProcess) -> None:
    """Holds: a URL switched to AWS_IAM (as a redeploy would) refuses unsigned calls
    once the snapshot refreshes, and a signed call passes."""
    url = f"{base(served)}/_url/{MODELS}/models"
    _, lam = clients(served.project_dir)
    lam.update_function_url_config(FunctionName=MODELS, AuthType="AWS_IAM")

    # (An earlier test may have left this URL without its public grant, so unsigned calls
    # can be refused before the switch: wait for the signed call to pass, then check.)
    def signed_ok() -> bool:
        return http(url, headers=sign(AWSRequest(method="GET", url=url))).status == 200

    assert eventually(signed_ok)
    assert forbidden(http(url))


def test_review8_function_deleted_behind_serves_back(served: ServeProcess) -> None:
    """Holds: the function deleted under a running serve: its URL answers 404, not a
    500 or a worker of code that no longer exists, and serve stays up."""
    url = f"{base(served)}/_url/{ANALYZE}/health"
    _, lam = clients(served.project_dir)
    lam.delete_function(FunctionName=ANALYZE)
    assert eventually(lambda: http(url).status == 404)
    assert served.process.poll() is None
