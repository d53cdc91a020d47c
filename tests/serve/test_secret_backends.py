"""The Gemini key end to end, for both `[secrets] backend`s: `scarab serve` deploys the
stage, `scarab secrets set gemini-api-key --stdin` stores the key, and /analyze reaches
the Gemini test server with exactly that key; the role may read exactly that secret."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable

import boto3
import pytest

from tests.serve.support import DEFAULT_TOML, emulator_url, http, make_project, tiny_jpeg_b64
from tests.support.gemini_server import GeminiServer
from tests.support.serve_process import ServeProcess, scarab_cli

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

SECRET = "/scarab/scarab/dev/gemini-api-key"  # the default [secrets] gemini_api_key
KEY = "AIza-e2e-test-key-4f1b9c"


@pytest.mark.parametrize("backend", ["ssm", "secretsmanager"])
def test_secrets_set_then_analyze_uses_exactly_that_key(
    backend: str,
    tmp_path,
    gemini_session_server: GeminiServer,
    serve_factory: Callable[..., ServeProcess],
) -> None:
    gemini = gemini_session_server
    gemini.reset()
    project = make_project(
        tmp_path / "proj", DEFAULT_TOML + f'\n[secrets]\nbackend = "{backend}"\n', web=False
    )
    serve = serve_factory(
        project,
        env={
            "GOOGLE_GEMINI_BASE_URL": gemini.url,
            "GOOGLE_API_KEY": None,  # no key in the environment: only the stored one
            "GEMINI_API_KEY": None,
            "AWS_ENDPOINT_URL": None,
            "AWS_PROFILE": None,
        },
    )
    body = json.dumps({"image": tiny_jpeg_b64(), "speed": "fast"}).encode()
    headers = {"x-api-key": serve.api_key or "", "content-type": "application/json"}
    before = http(f"{serve.api_url}/analyze", "POST", body, headers)
    assert before.status == 503, before.body
    assert before.json()["error"]["code"] == "gemini_not_configured"

    stored = scarab_cli(
        project, "secrets", "set", "gemini-api-key", "--stdin", "--local", stdin=KEY + "\n"
    )
    assert stored.returncode == 0, stored.stdout + stored.stderr
    assert KEY not in stored.stdout + stored.stderr

    after = http(f"{serve.api_url}/analyze", "POST", body, headers)
    assert after.status == 200, after.body
    assert after.json()["analysis"]["picture_location"]
    assert [r.api_key for r in gemini.requests] == [KEY]

    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    url = emulator_url(project)
    env = session.client("lambda", endpoint_url=url).get_function_configuration(
        FunctionName="scarab-dev-analyze"
    )["Environment"]["Variables"]
    assert env["GOOGLE_API_KEY_PARAM"] == SECRET
    assert env["GOOGLE_API_KEY_BACKEND"] == backend
    policy = session.client("iam", endpoint_url=url).get_role_policy(
        RoleName="scarab-dev-analyze-role", PolicyName="scarab-read-secret"
    )["PolicyDocument"]
    [statement] = policy["Statement"]
    if backend == "ssm":
        assert statement["Action"] == "ssm:GetParameter"
        assert statement["Resource"] == f"arn:aws:ssm:us-east-1:123456789012:parameter{SECRET}"
        arn = session.client("ssm", endpoint_url=url).get_parameter(Name=SECRET)["Parameter"]["ARN"]
        assert arn == statement["Resource"]
    else:
        assert statement["Action"] == "secretsmanager:GetSecretValue"
        assert statement["Resource"] == (
            f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET}-??????"
        )
        arn = session.client("secretsmanager", endpoint_url=url).describe_secret(SecretId=SECRET)[
            "ARN"
        ]
        # The policy's six "?" match exactly the random suffix Secrets Manager appended.
        assert fnmatch.fnmatchcase(arn, statement["Resource"])
        assert not fnmatch.fnmatchcase(arn + "x", statement["Resource"])
