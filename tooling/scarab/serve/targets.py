"""`scarab serve --target sagemaker|fargate`: the server (lens.server on uvicorn) against
the embedded emulator, reading the local stage's registry as the function does.

The stage is deployed into the emulator as for `scarab serve` (scarab.serve.stack), then
the server runs as a child process with the function's code on PYTHONPATH and the
runtime contract's environment: MODEL_REGISTRY_TABLE, ARTIFACTS_BUCKET,
EXECUTION_MODE=standalone, the emulator's endpoint and fake credentials, and
- fargate: SCARAB_API_KEYS_SECRET, the key ring secret (Names.server_keys_secret),
  created with a first key when missing;
- sagemaker: no keys (IAM is in front of an endpoint), SCARAB_ENDPOINT_NAME (it is the
  stage's endpoint: it never forwards), SCARAB_ENDPOINT_MODELS the registry models
  hosted on the stage's endpoint (when any), and Serverless's 4 MB / 60 s limits on
  POST /invocations (scarab.serve.target_server).
"""

from __future__ import annotations

import datetime
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from scarab.emulator import FAKE_CREDENTIALS, emulator_session
from scarab.errors import ScarabError
from scarab.functions import TASK_ROOT
from scarab.naming import Names
from scarab.serve.stack import LocalStack

SERVER_TARGETS = ("sagemaker", "fargate")
KEYS_SECRET_ENV = "SCARAB_API_KEYS_SECRET"  # noqa: S105 - contract with lens.server.auth
ENDPOINT_MODELS_ENV = "SCARAB_ENDPOINT_MODELS"  # contract with lens.server.sagemaker
REGISTRY_TTL_ENV = "SCARAB_REGISTRY_TTL_S"  # contract with lens.predict.sources
ENDPOINT_NAME_ENV = "SCARAB_ENDPOINT_NAME"  # contract with lens.predict.sagemaker
_READY_TIMEOUT_S = 90.0
WATCH = "scarab.serve.parent_watch"


@dataclass
class ServerProcess:
    """The running server and what serve prints about it."""

    process: subprocess.Popen[bytes]
    url: str
    key: str | None  # fargate's first enabled key

    def stop(self, grace: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()


def _registry_env(stack: LocalStack) -> dict[str, str]:
    """The models function's registry variables, as deployed in the emulator (and its
    registry TTL when set, so a push is served as soon as the function serves it)."""
    from scarab.deploy.models import ARTIFACTS_BUCKET_ENV, REGISTRY_TABLE_ENV

    names = Names(stack.app, stack.stage)
    lam = emulator_session(stack.region).client("lambda", endpoint_url=stack.endpoint_url)
    got = lam.get_function_configuration(FunctionName=names.function("models").function)
    variables = got.get("Environment", {}).get("Variables", {})
    env = {k: variables[k] for k in (REGISTRY_TABLE_ENV, ARTIFACTS_BUCKET_ENV) if k in variables}
    if len(env) != 2:
        raise ScarabError(
            f"The stage {stack.stage} in the emulator has no model registry; run serve"
            " without --no-deploy."
        )
    if REGISTRY_TTL_ENV in variables:
        env[REGISTRY_TTL_ENV] = variables[REGISTRY_TTL_ENV]
    return env


def hosted_on(stack: LocalStack, table: str, endpoint: str) -> list[str]:
    """The registry's models with a version hosted on `endpoint`."""
    from scarab.deploy.models import SAGEMAKER_HOST

    ddb = emulator_session(stack.region).client("dynamodb", endpoint_url=stack.endpoint_url)
    names: set[str] = set()
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            if item.get("host", {}).get("S") == f"{SAGEMAKER_HOST}{endpoint}":
                names.add(item["name"]["S"])
    return sorted(names)


def ensure_keys(stack: LocalStack) -> tuple[str, str]:
    """The fargate key ring secret (created with a first key when missing): (its name,
    the first enabled key's value)."""
    from scarab.models import use_function_code

    use_function_code(stack.project_dir)
    from lens.server.keys import KeyRing, ServerKey, dump_keys, parse_keys

    names = Names(stack.app, stack.stage)
    secret = names.server_keys_secret
    sm = emulator_session(stack.region).client("secretsmanager", endpoint_url=stack.endpoint_url)
    try:
        ring = parse_keys(sm.get_secret_value(SecretId=secret)["SecretString"])
    except sm.exceptions.ResourceNotFoundException:
        first = ServerKey(
            id=f"k-{secrets.token_hex(2)}",
            name=names.key(1),
            value=secrets.token_urlsafe(30),
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
        ring = KeyRing(keys=(first,))
        sm.create_secret(
            Name=secret,
            SecretString=dump_keys(ring),
            Tags=[{"Key": k, "Value": v} for k, v in names.tags.items()],
        )
    enabled = [k for k in ring.keys if k.enabled]
    if not enabled:
        raise ScarabError(
            f"The key ring {secret} has no enabled key; create one with 'scarab keys create"
            " --target fargate --local'."
        )
    return secret, enabled[0].value


def server_environment(stack: LocalStack, target: str) -> tuple[dict[str, str], str | None]:
    """The server's environment for `target`, and fargate's key."""
    code = (stack.project_dir / TASK_ROOT).resolve()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "PYTHONPATH": str(code),
        "PYTHONUNBUFFERED": "1",
        "AWS_REGION": stack.region,
        "AWS_DEFAULT_REGION": stack.region,
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": stack.endpoint_url,
        "EXECUTION_MODE": "standalone",
        **_registry_env(stack),
    }
    key = None
    if target == "fargate":
        env[KEYS_SECRET_ENV], key = ensure_keys(stack)
    else:
        from scarab.deploy.models import REGISTRY_TABLE_ENV

        endpoint = Names(stack.app, stack.stage).endpoint
        # This server is the endpoint: it computes its models, never forwarding them to
        # InvokeEndpoint (to itself, for a model whose host names it).
        env[ENDPOINT_NAME_ENV] = endpoint
        hosted = hosted_on(stack, env[REGISTRY_TABLE_ENV], endpoint)
        if hosted:
            env[ENDPOINT_MODELS_ENV] = ",".join(hosted)
    return env, key


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def start_server(
    stack: LocalStack, target: str, host: str, port: int, log: Any, extra_env: dict[str, str]
) -> ServerProcess:
    """Start the server for `target` on host:port and wait until GET /health answers."""
    env, key = server_environment(stack, target)
    env.update(extra_env)
    module = "lens.server" if target == "fargate" else "scarab.serve.target_server"
    # stdin: a pipe held open by this process alone, so the server stops when serve is
    # gone, even killed (scarab.serve.parent_watch).
    process = subprocess.Popen(
        [sys.executable, "-m", WATCH, module, "--host", host, "--port", str(port)],
        cwd=str(stack.project_dir),
        env=env,
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=log,
    )
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104
    server = ServerProcess(process, f"http://{shown}:{port}", key)
    deadline = time.monotonic() + _READY_TIMEOUT_S
    try:
        while not _healthy(server.url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise ScarabError(
                    f"The {target} server did not start (exit status {process.poll()});"
                    " see the server log for why."
                )
            time.sleep(0.1)
    except BaseException:  # Ctrl-C while it starts too: never leave it running
        server.stop()
        raise
    return server
