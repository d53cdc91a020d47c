"""`python -m scarab.serve.target_server --host H --port P`: lens.server on uvicorn, as
the SageMaker Serverless endpoint runs it, with Serverless's limits on POST /invocations:
a request payload of at most 4 MB (413) and 60 s per invocation (504), both answered
with the project's error body. `scarab serve --target sagemaker` runs it with the
function's code on PYTHONPATH (see scarab.serve.targets).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from scarab.serve.endpoints import INVOCATION_TIMEOUT_S, PAYLOAD_LIMIT

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
App = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Any]
# Tests shorten the time limit (a model that takes a minute is not a cheap test).
TIMEOUT_ENV = "SCARAB_SAGEMAKER_TIMEOUT_S"


def _error(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"error": {"code": code, "message": message}}).encode()


class ServerlessLimits:
    """ASGI middleware: SageMaker Serverless's payload and time limits on /invocations."""

    def __init__(self, app: App, payload_limit: int, timeout_s: float) -> None:
        self.app = app
        self.payload_limit = payload_limit
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/invocations":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.payload_limit:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if size > self.payload_limit:
            mb = self.payload_limit // (1024 * 1024)
            await _send(
                send,
                *_error(
                    413,
                    "payload_too_large",
                    f"SageMaker Serverless takes at most {mb} MB per request.",
                ),
            )
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return dict(await receive())  # the body is read: only a disconnect is left
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        answer: list[Message] = []

        async def keep(message: Message) -> None:
            answer.append(message)

        try:
            await asyncio.wait_for(self.app(scope, replay, keep), self.timeout_s)
        except TimeoutError:
            await _send(
                send,
                *_error(
                    504,
                    "model_timeout",
                    "The invocation took longer than SageMaker Serverless allows"
                    f" ({self.timeout_s:g} s).",
                ),
            )
            return
        for message in answer:
            await send(message)


async def _send(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scarab.serve.target_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    import uvicorn
    from lens.server.app import create_app

    timeout = float(os.environ.get(TIMEOUT_ENV) or INVOCATION_TIMEOUT_S)
    app = ServerlessLimits(create_app(), PAYLOAD_LIMIT, timeout)
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="warning", access_log=False,
        server_header=False,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
