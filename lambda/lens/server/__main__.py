"""`python -m lens.server [--host 127.0.0.1] [--port 8080] [--workers N]`: the server on uvicorn.

The container image runs it as `serve` (lens/server/entrypoint.sh: --host 0.0.0.0
--port 8080), which is how SageMaker starts a serving container. Each worker process
answers one request at a time (lens.server.app) with its own copy of the models, so
--workers (or SCARAB_SERVER_WORKERS, for a container whose command is fixed) is how many
requests run at once, at that many times the models' memory.
"""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
WORKERS_ENV = "SCARAB_SERVER_WORKERS"
MAX_WORKERS = 64


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (1-65535)")
    return port


def _workers(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of workers (1-{MAX_WORKERS}; --workers or {WORKERS_ENV})"
        )
    return int(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lens.server",
        description="Serve the Scarab API (and SageMaker's /ping and /invocations) over HTTP.",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=os.environ.get(WORKERS_ENV, "1"),
        help=f"worker processes, each with the models loaded (default {WORKERS_ENV} or 1)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default info)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import uvicorn

    # The factory's import string: uvicorn builds the app in each worker process, where
    # the models are loaded once and stay in memory.
    uvicorn.run(
        "lens.server.app:create_app",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
