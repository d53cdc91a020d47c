"""A Gemini-compatible HTTP server for tests: the real google-genai SDK talks to it.

It implements `POST /v1beta/models/{model}:generateContent` (and `/v1/...`), accepts
camelCase and snake_case request keys and standard or URL-safe base64 inline data,
records every request, and answers from a per-test script of replies:

    server.reply_json({...})            # candidate text is this JSON object
    server.reply_error(429)             # Google's error body, optional Retry-After
    server.reply_delay(5.0, then=...)   # wait, then answer
    server.reply_truncated({...})       # the JSON cut in half
    server.reply_blocked()              # finishReason SAFETY, no text
    server.reply_no_candidates()        # promptFeedback.blockReason, no candidates

Scripted replies are used in order; when the script is empty the `default` reply
answers (a valid analysis unless a test changes it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .ports import free_port

SAMPLE_ANALYSIS: dict[str, Any] = {
    "picture_location": "Tomb of Nefertari, Valley of the Queens, Luxor (West Bank)",
    "date": "New Kingdom, 19th Dynasty, reign of Ramesses II (c. 1255 BCE)",
    "characters": [
        {
            "character_name": "Nefertari",
            "reasoning": "Vulture crown with double plumes and her cartouche beside her.",
            "description": "The queen in a pleated white linen gown, offering to a god.",
            "location": "Left half of the scene",
        },
        {
            "character_name": "Isis",
            "reasoning": "Throne-shaped hieroglyph on her head and the label 'Isis, the great'.",
            "description": "A goddess leading the queen by the hand.",
            "location": "Right half of the scene",
        },
    ],
    "ancient_text_translation": "Words spoken by Isis: I give you a place in the sacred land.",
    "interesting_detail": "The pigments were never restored; the blue is original Egyptian blue.",
}

_ERROR_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_ERROR_MESSAGE = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
_PATH = re.compile(r"^/(v1beta|v1|v1alpha)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def normalize_keys(value: Any) -> Any:
    """camelCase -> snake_case, recursively, so tests see one shape whatever was sent."""
    if isinstance(value, dict):
        return {_snake(k): normalize_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_keys(v) for v in value]
    return value


def decode_base64(data: str) -> bytes:
    """Standard or URL-safe base64, padded or not."""
    padded = data + "=" * (-len(data) % 4)
    try:
        if "-" in data or "_" in data:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"inline data is not base64: {exc}") from exc


@dataclass
class Reply:
    """What the server answers to one request."""

    kind: str  # json | error | truncated | blocked | no_candidates | raw
    payload: Any = None
    status: int = 200
    delay: float = 0.0
    retry_after: str | None = None
    usage: dict[str, int] | None = None


@dataclass
class RecordedRequest:
    """One request as the server saw it (keys normalized to snake_case)."""

    model: str
    method: str
    api_version: str
    body: dict[str, Any]
    api_key: str | None
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (mime type, bytes)
    texts: list[str] = field(default_factory=list)
    # The client's (host, port): one port per TCP connection, so requests that share a
    # pooled connection share it.
    peer: tuple[str, int] | None = None

    @property
    def generation_config(self) -> dict[str, Any]:
        return dict(self.body.get("generation_config") or {})


DEFAULT_USAGE = {
    "promptTokenCount": 1290,
    "candidatesTokenCount": 210,
    "thoughtsTokenCount": 64,
    "totalTokenCount": 1564,
}


class GeminiServer:
    """Scriptable Gemini-compatible server on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[RecordedRequest] = []
        self.default = Reply("json", SAMPLE_ANALYSIS)
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL for GOOGLE_GEMINI_BASE_URL."""
        return f"http://127.0.0.1:{self.port}"

    # --- scripting -----------------------------------------------------------
    def reply_json(self, obj: Any, *, usage: dict[str, int] | None = None) -> None:
        self._push(Reply("json", obj, usage=usage))

    def reply_error(self, status: int, *, retry_after: str | None = None) -> None:
        self._push(Reply("error", status=status, retry_after=retry_after))

    def reply_delay(self, seconds: float, then: Reply | None = None) -> None:
        reply = then or Reply("json", SAMPLE_ANALYSIS)
        reply.delay = seconds
        self._push(reply)

    def reply_truncated(self, obj: Any = None) -> None:
        self._push(Reply("truncated", obj if obj is not None else SAMPLE_ANALYSIS))

    def reply_blocked(self) -> None:
        self._push(Reply("blocked"))

    def reply_no_candidates(self) -> None:
        self._push(Reply("no_candidates"))

    def reply_raw(self, status: int, body: Any) -> None:
        """Answer with exactly this JSON body and status."""
        self._push(Reply("raw", body, status=status))

    def _push(self, reply: Reply) -> None:
        with self._lock:
            self._script.append(reply)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.default = Reply("json", SAMPLE_ANALYSIS)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    # --- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                server._handle(self)

            def do_GET(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # --- request handling ----------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        path = h.path.split("?", 1)[0]
        match = _PATH.match(path)
        if not match:
            self._send(h, 404, {"error": {"code": 404, "message": f"no route {path}"}})
            return
        try:
            body = normalize_keys(json.loads(raw or b"{}"))
            recorded = self._record(match, body, h)
        except (ValueError, TypeError) as exc:
            self._send(h, 400, _error_body(400, f"Invalid JSON payload received. {exc}"))
            return
        with self._lock:
            self.requests.append(recorded)
        reply = self._next_reply()
        if reply.delay and self._stopping.wait(reply.delay):
            return
        status, payload, headers = _render(reply, recorded.model)
        self._send(h, status, payload, headers)

    def _record(
        self, match: re.Match[str], body: dict[str, Any], h: BaseHTTPRequestHandler
    ) -> RecordedRequest:
        query_key = None
        if "key=" in h.path:
            query_key = h.path.split("key=", 1)[1].split("&", 1)[0]
        recorded = RecordedRequest(
            model=match.group("model"),
            method=match.group("method"),
            api_version=match.group(1),
            body=body,
            api_key=h.headers.get("x-goog-api-key") or query_key,
            peer=(str(h.client_address[0]), int(h.client_address[1])),
        )
        for content in body.get("contents") or []:
            for part in content.get("parts") or []:
                inline = part.get("inline_data")
                if inline:
                    mime = inline.get("mime_type", "")
                    recorded.images.append((mime, decode_base64(inline.get("data", ""))))
                if part.get("text"):
                    recorded.texts.append(part["text"])
        system = body.get("system_instruction") or {}
        for part in system.get("parts") or []:
            if part.get("text"):
                recorded.texts.append(part["text"])
        return recorded

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=UTF-8")
        h.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.end_headers()
        # The client may have given up already (its own timeout); nothing to do then.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            h.wfile.write(data)


def _error_body(status: int, message: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message or _ERROR_MESSAGE.get(status, "Error"),
            "status": _ERROR_STATUS.get(status, "UNKNOWN"),
        }
    }


def _candidate(text: str, finish: str = "STOP") -> dict[str, Any]:
    return {
        "content": {"parts": [{"text": text}], "role": "model"},
        "finishReason": finish,
        "index": 0,
    }


def _render(reply: Reply, model: str) -> tuple[int, Any, dict[str, str]]:
    usage = reply.usage or DEFAULT_USAGE
    if reply.kind == "error":
        headers = {"Retry-After": reply.retry_after} if reply.retry_after else {}
        return reply.status, _error_body(reply.status), headers
    if reply.kind == "raw":
        return reply.status, reply.payload, {}
    if reply.kind == "json":
        text = json.dumps(reply.payload)
        return (
            200,
            {"candidates": [_candidate(text)], "usageMetadata": usage, "modelVersion": model},
            {},
        )
    if reply.kind == "truncated":
        text = json.dumps(reply.payload)
        return (
            200,
            {
                "candidates": [_candidate(text[: len(text) // 2], "MAX_TOKENS")],
                "usageMetadata": usage,
                "modelVersion": model,
            },
            {},
        )
    if reply.kind == "blocked":
        candidate = {
            "finishReason": "SAFETY",
            "index": 0,
            "safetyRatings": [
                {
                    "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                    "probability": "HIGH",
                    "blocked": True,
                }
            ],
        }
        return 200, {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}, {}
    if reply.kind == "no_candidates":
        return (
            200,
            {
                "promptFeedback": {"blockReason": "SAFETY"},
                "usageMetadata": usage,
                "modelVersion": model,
            },
            {},
        )
    raise ValueError(f"unknown reply kind {reply.kind}")
