"""The `scarab serve` command (registered by scarab.cli)."""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
import time
from types import FrameType

import typer

from scarab.serve.endpoints import INVOCATION_TIMEOUT_S, PAYLOAD_LIMIT
from scarab.serve.record import ServeRecord
from scarab.serve.runtime import DEFAULT_MAX_CONTAINERS
from scarab.serve.server import ServerOptions, function_log_path, run
from scarab.serve.snapshot import Snapshot
from scarab.serve.stack import LocalStack
from scarab.serve.targets import SERVER_TARGETS


def _say(text: str) -> None:
    typer.echo(text)
    sys.stdout.flush()


def _progress(text: str) -> None:
    typer.echo(f"  {text}", err=True)


def _check_port(host: str, port: int) -> None:
    """Fail before deploying when the port is taken (uvicorn would only log it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = (
                "is already in use"
                if exc.errno == errno.EADDRINUSE
                else f"is unusable ({exc.strerror})"
            )
            raise typer.BadParameter(
                f"{host}:{port} {reason}; choose another with --port."
            ) from None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve_target(
    stack: LocalStack, target: str, host: str, port: int, timeout: float, started: float
) -> None:
    """Run the server for `target` until Ctrl-C (or until it exits); serve's record says
    where it answers while it runs."""
    from scarab.errors import ScarabError
    from scarab.serve.target_server import TIMEOUT_ENV
    from scarab.serve.targets import start_server

    log_path = function_log_path(stack.project_dir)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        server = start_server(stack, target, host, port, log, {TIMEOUT_ENV: f"{timeout:g}"})
        try:
            _say("")
            _say(
                f"Scarab's {target} server is running locally"
                f" (ready in {time.monotonic() - started:.1f}s)."
            )
            _say(f"  URL:         {server.url}")
            if server.key is not None:
                _say(f"  API key:     {server.key}")
                _say("  Keys:        scarab keys list --target fargate --local")
                _say(f"  Try:         curl -H 'x-api-key: {server.key}' {server.url}/models")
            else:
                _say(
                    "  API key:     (none: IAM signs InvokeEndpoint in front of an endpoint;"
                    f" /invocations takes {PAYLOAD_LIMIT // 2**20} MB and {timeout:g} s at most)"
                )
                _say(
                    f"  Try:         curl -X POST -H 'Content-Type: application/json'"
                    f" -H 'X-Amzn-SageMaker-Custom-Attributes: model=tabular'"
                    f" -d @request.json {server.url}/invocations"
                )
            _say(f"  Server log:  {log_path}")
            _say("Press Ctrl-C to stop.")
            record = ServeRecord(url=server.url, api_url=server.url, pid=os.getpid())
            record.write(stack.project_dir)
            try:
                code = server.process.wait()
            except KeyboardInterrupt:
                typer.echo("scarab serve: stopped.", err=True)
                return
            finally:
                record.remove(stack.project_dir)
            raise ScarabError(f"the {target} server exited with status {code}; see {log_path}.")
        finally:
            server.stop()


def serve_command(
    port: int = typer.Option(3000, help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    stage: str | None = typer.Option(
        None, help="Stage to deploy and serve (default: scarab.toml's)."
    ),
    no_deploy: bool = typer.Option(
        False, "--no-deploy", help="Serve what is already deployed in the emulator."
    ),
    target: str = typer.Option(
        "lambda",
        "--target",
        help="lambda (the API behind API Gateway), or sagemaker / fargate: the server"
        " (lens.server) as that target runs it, against the same emulated registry.",
    ),
    integration_timeout: float = typer.Option(
        29.0, "--integration-timeout", hidden=True, help="API Gateway's integration timeout (s)."
    ),
    refresh_interval: float = typer.Option(
        0.5, "--refresh-interval", hidden=True, help="How often to re-read the emulator (s)."
    ),
    sagemaker_timeout: float = typer.Option(
        INVOCATION_TIMEOUT_S,
        "--sagemaker-timeout",
        hidden=True,
        help="The emulated SageMaker endpoints' time per invocation (s).",
    ),
    max_containers: int = typer.Option(
        DEFAULT_MAX_CONTAINERS,
        "--max-containers",
        hidden=True,
        help="Warm containers per function version (concurrent invocations).",
    ),
) -> None:
    """Run the whole stack locally: emulator, deployed API with API Gateway's rules, web client.

    Local only: GOOGLE_GEMINI_BASE_URL in this environment is passed to the function.
    """
    from scarab.config import find_project_dir
    from scarab.errors import ScarabError
    from scarab.serve.stack import prepare

    if target not in ("lambda", *SERVER_TARGETS):
        raise typer.BadParameter(
            f"--target {target!r}: use lambda, sagemaker or fargate.", param_hint="--target"
        )
    logging.basicConfig(level=logging.WARNING, format="scarab serve: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cleans up like Ctrl-C
    project_dir = find_project_dir()
    _check_port(host, port)
    started = time.monotonic()
    record: ServeRecord | None = None
    stack = None
    try:
        typer.echo(
            "Starting the local stack (emulated AWS; nothing leaves this machine)...", err=True
        )
        stack = prepare(project_dir, stage=stage, deploy=not no_deploy, progress=_progress)
        if target in SERVER_TARGETS:
            _serve_target(stack, target, host, port, sagemaker_timeout, started)
            return
        options = ServerOptions(
            host=host,
            port=port,
            integration_timeout=integration_timeout,
            refresh_interval=refresh_interval,
            max_containers=max_containers,
            sagemaker_timeout=sagemaker_timeout,
        )
        local = stack

        def ready(snapshot: Snapshot) -> None:
            nonlocal record
            shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
            url = f"http://{shown_host}:{port}"
            api_url = f"{url}/{local.stage}"
            key = snapshot.local_key.value if snapshot.local_key else None
            _say("")
            _say(f"Scarab is running locally (ready in {time.monotonic() - started:.1f}s).")
            _say(f"  API URL:     {api_url}")
            _say(f"  Web client:  {url}/")
            _say(
                f"  API key:     {key}"
                if key
                else "  API key:     (none: the stage's usage plan has no enabled key)"
            )
            _say(f"  Try:         curl -H 'x-api-key: {key or '...'}' {api_url}/models")
            if not local.gemini_key_stored:
                _say(
                    "  Gemini:      no GOOGLE_API_KEY in this environment: /analyze answers"
                    " 503, the offline models work"
                )
            _say(f"  Function log: {function_log_path(project_dir)}")
            _say("Press Ctrl-C to stop.")
            record = ServeRecord(url=url, api_url=api_url, pid=os.getpid())
            record.write(project_dir)

        run(stack, options, ready)
    except KeyboardInterrupt:
        pass
    except ScarabError as exc:
        typer.echo(f"scarab serve: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        if record is not None:
            record.remove(project_dir)
        if stack is not None:
            stack.close()
    typer.echo("scarab serve: stopped.", err=True)
