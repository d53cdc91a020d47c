"""uvicorn's h11 protocol with read deadlines and a bound on open connections.

uvicorn only times out idle keep-alive connections: a client that connects and sends
half a request line, or headers one byte at a time, or stops half-way through a body,
holds its connection (a file descriptor) forever, and a few hundred such clients
starve everyone else. This protocol closes a connection whose request head is not
complete within `header_timeout` (answering 408 when nothing was answered yet), one
whose body makes no progress for `body_timeout`, and past `max_connections` the oldest
connection still sending its head, so real requests keep being answered.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from scarab.serve.guard import ReadLimits

_TIMEOUT_TEXT = b"Request Timeout: the request was not sent in time.\n"
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_TEXT), _TIMEOUT_TEXT)
)


class GuardedH11Protocol(H11Protocol):
    """One connection; the class attributes are shared by one server's connections
    (make the class with `guarded_protocol`)."""

    limits: ClassVar[ReadLimits] = ReadLimits()
    # Connections still sending a request head, oldest first (a dict keeps order).
    heading: ClassVar[dict[GuardedH11Protocol, None]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()
        if len(self.connections) > self.limits.max_connections:
            oldest = next((c for c in self.heading if c is not self), self)
            oldest._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.heading.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self not in self.heading:
            self._await_head()  # the first byte of a keep-alive connection's next request
        super().data_received(data)
        self._follow_state()

    def _follow_state(self) -> None:
        state = self.conn.their_state
        if state is h11.IDLE:
            return  # still sending the head: its deadline stands
        self.heading.pop(self, None)
        if state is h11.SEND_BODY:
            self._arm(self.limits.body_timeout, self._body_stalled)  # progress: re-armed
        else:
            self._disarm()

    def _await_head(self) -> None:
        self.heading[self] = None
        self._arm(self.limits.header_timeout, self._head_late)

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _head_late(self) -> None:
        self._read_timer = None
        if self.conn.their_state is not h11.IDLE:
            return
        if self.conn.our_state is h11.IDLE and not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
        self._close()

    def _body_stalled(self) -> None:
        self._read_timer = None
        if self.conn.their_state is not h11.SEND_BODY:
            return
        if self.flow.read_paused:  # the app is not reading yet: not the client's fault
            self._arm(self.limits.body_timeout, self._body_stalled)
            return
        self._close()

    def _close(self) -> None:
        self._disarm()
        self.heading.pop(self, None)
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(limits: ReadLimits) -> type[GuardedH11Protocol]:
    """A protocol class for one server, with its own limits and connection registry."""
    attributes: dict[str, Any] = {"limits": limits, "heading": {}}
    return type("ServeH11Protocol", (GuardedH11Protocol,), attributes)
