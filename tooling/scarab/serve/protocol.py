"""uvicorn's h11 protocol with read deadlines and a bound on open connections.

uvicorn only times out idle keep-alive connections: a client that connects and sends
half a request line, or headers one byte at a time, or a body one byte at a time,
holds its connection (a file descriptor) for as long as it likes, and a few hundred
such clients starve everyone else. This protocol closes a connection whose request
head is not complete within `header_timeout` (answering 408 when it had sent part of
a request; a connection that never sent a byte is just closed), and one whose body
falls below the pace of `ReadLimits` (`min_body_bytes` per `body_timeout` window).
Past `max_connections` it makes room: an idle kept-alive connection first, else the
oldest still sending its head, else the slowest body below the pace; when every
connection is busy with a real request, the newcomer is answered 503.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from scarab.serve.guard import ReadLimits


def _plain(status: bytes, text: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\n" + extra + b"content-length: %d\r\n\r\n%s" % (len(text), text)
    )


_TIMEOUT_RESPONSE = _plain(
    b"408 Request Timeout", b"Request Timeout: the request was not sent in time.\n"
)
_FULL_RESPONSE = _plain(
    b"503 Service Unavailable",
    b"Service Unavailable: every connection is busy with a request; retry shortly.\n",
    b"retry-after: 1\r\n",
)


class GuardedH11Protocol(H11Protocol):
    """One connection; the class attributes are shared by one server's connections
    (make the class with `guarded_protocol`). Each registry keeps its connections in
    the order they entered that phase (a dict keeps order), oldest first."""

    limits: ClassVar[ReadLimits] = ReadLimits()
    # Between requests on a kept-alive connection, no byte of the next one yet.
    idle: ClassVar[dict[GuardedH11Protocol, None]] = {}
    # Connected, or a next request begun, and its head not complete yet.
    heading: ClassVar[dict[GuardedH11Protocol, None]] = {}
    # Sending a request body.
    bodies: ClassVar[dict[GuardedH11Protocol, None]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # bytes of the request head being waited for
        self._body_started = 0.0  # loop time the body began
        self._body_bytes = 0  # bytes of it so far
        self._window_bytes = 0  # bytes in the current pace window
        self._window_need = 0  # what the current window must bring
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()
        if len(self.connections) > self.limits.max_connections:
            victim = self._victim()
            if victim is None:
                self._refuse()
            else:
                victim._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped: closing with unread data would reset our 503
        if self in self.idle:
            self._await_head()  # the first byte of a kept-alive connection's next request
        if self in self.heading:
            self._head_bytes += len(data)
        elif self in self.bodies:
            self._body_bytes += len(data)
            self._window_bytes += len(data)
        super().data_received(data)
        self._follow_state()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._follow_state()

    def _follow_state(self) -> None:
        theirs, ours = self.conn.their_state, self.conn.our_state
        if theirs is h11.IDLE:
            if self in self.heading:
                return  # still sending the head: its deadline stands
            if ours is h11.IDLE and not self.conn.trailing_data[0]:
                # Answered and kept alive; uvicorn's keep-alive timeout ends it.
                self._enter(self.idle)
                self._disarm()
            else:
                self._await_head()  # a pipelined request begun in the buffered bytes
            return
        if theirs is h11.SEND_BODY:
            if self not in self.bodies:
                self._start_body()
            return
        self._enter(None)  # the request is in: busy until answered
        self._disarm()

    def _enter(self, registry: dict[GuardedH11Protocol, None] | None) -> None:
        for other in (self.idle, self.heading, self.bodies):
            if other is not registry:
                other.pop(self, None)
        if registry is not None and self not in registry:
            registry[self] = None

    def _forget(self) -> None:
        self._disarm()
        self._enter(None)

    def _await_head(self) -> None:
        self._enter(self.heading)
        self._head_bytes = 0
        self._arm(self.limits.header_timeout, self._head_late)

    def _start_body(self) -> None:
        self._enter(self.bodies)
        self._body_started = self.loop.time()
        # The part of the body that came with the head counts as received.
        declared, left = self._declared(), self._body_left()
        self._body_bytes = declared - left if declared is not None and left is not None else 0
        self._new_window()

    def _new_window(self) -> None:
        self._window_bytes = 0
        left = self._body_left()
        self._window_need = (
            self.limits.min_body_bytes if left is None else min(self.limits.min_body_bytes, left)
        )
        self._arm(self.limits.body_timeout, self._window_over)

    def _declared(self) -> int | None:
        """The request's Content-Length, if it has one."""
        for name, value in self.headers or ():
            if name == b"content-length" and value.strip().isdigit():
                return int(value)
        return None

    def _body_left(self) -> int | None:
        """Body bytes still to come, when the request declared its length (h11's
        count; None if h11 ever stops keeping it there: the window then asks for
        `min_body_bytes`)."""
        reader = getattr(self.conn, "_reader", None)
        remaining = getattr(reader, "_remaining", None)
        return remaining if isinstance(remaining, int) else None

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _victim(self) -> GuardedH11Protocol | None:
        """The connection to close to make room for this one, or None (all busy)."""
        for registry in (self.idle, self.heading):
            victim = next((c for c in registry if c is not self), None)
            if victim is not None:
                return victim
        now = self.loop.time()
        slow = [
            c
            for c in self.bodies
            if not c.flow.read_paused
            and self.limits.body_slow(c._body_bytes, now - c._body_started)
        ]
        return min(
            slow, key=lambda c: c._body_bytes / max(now - c._body_started, 1e-3), default=None
        )

    def _refuse(self) -> None:
        """Answer 503 and close: past the bound, and no connection may be closed."""
        self._forget()
        self._refused = True
        self.transport.write(_FULL_RESPONSE)
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client reads the 503; its EOF closes us
        self._read_timer = self.loop.call_later(self.limits.header_timeout, self._close)

    def _head_late(self) -> None:
        self._read_timer = None
        if self not in self.heading:
            return
        # A connection that never sent a byte asked nothing: it gets no answer.
        if self._head_bytes and self.conn.our_state is h11.IDLE and not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
        self._close()

    def _window_over(self) -> None:
        self._read_timer = None
        if self not in self.bodies or self.conn.their_state is not h11.SEND_BODY:
            return
        if self.flow.read_paused:  # the app is not reading yet: not the client's fault
            self._new_window()
            return
        if self._window_bytes < self._window_need:
            self._close()  # below the pace: a drip, or a stall
            return
        self._new_window()

    def _close(self) -> None:
        self._forget()
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(limits: ReadLimits) -> type[GuardedH11Protocol]:
    """A protocol class for one server, with its own limits and connection registries."""
    attributes: dict[str, Any] = {"limits": limits, "idle": {}, "heading": {}, "bodies": {}}
    return type("ServeH11Protocol", (GuardedH11Protocol,), attributes)
