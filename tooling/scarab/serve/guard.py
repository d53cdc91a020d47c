"""What serve and its embedded emulator accept from the network: which Host names
(against DNS rebinding) and how long a client may take to send a request.

A page on attacker.example whose name resolves to 127.0.0.1 reaches a loopback server
with `Host: attacker.example`; refusing every Host that is not a name of the loopback
interface keeps such a page from driving the keyed `/api/*` proxy or reading the
emulator (which holds the stored Gemini key). Light on imports: the emulator uses it.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
MISDIRECTED_STATUS = 421
MISDIRECTED_MESSAGE = (
    b"Misdirected Request: this server answers only for 127.0.0.1, localhost and [::1].\n"
)

# Environment overrides (seconds / a count), mainly so the tests run in seconds.
HEADER_TIMEOUT_VARIABLE = "SCARAB_SERVE_HEADER_TIMEOUT"
BODY_TIMEOUT_VARIABLE = "SCARAB_SERVE_BODY_TIMEOUT"
MAX_CONNECTIONS_VARIABLE = "SCARAB_SERVE_MAX_CONNECTIONS"


def host_names(listen_host: str | None = None) -> frozenset[str]:
    """The Host names (without port) accepted: loopback's, plus the `--host` given."""
    names = set(LOOPBACK_NAMES)
    if listen_host:
        name = listen_host.strip().lower()
        if ":" in name and not name.startswith("["):
            name = f"[{name}]"  # an IPv6 literal appears bracketed in a Host header
        names.add(name)
    return frozenset(names)


def host_allowed(host: str | None, names: frozenset[str], port: int | str | None) -> bool:
    """True when a request's Host header is one of `names`, bare or with `port`.

    A request without a Host header (HTTP/1.0 tools) is not a browser on a foreign
    page, so it passes; browsers always send one.
    """
    if host is None:
        return True
    host = host.strip().lower()
    if host in names:
        return True
    name, sep, tail = host.rpartition(":")
    return bool(sep) and name in names and port is not None and tail == str(port)


def _positive(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class ReadLimits:
    """How long a client may take, and how many connections may be open at once.

    `header_timeout` bounds the whole request head (from the connection, or the first
    byte of a keep-alive request), so one byte every few seconds does not hold a
    connection. A body must keep a pace: every `body_timeout` window it must bring
    `min_body_bytes` (or all that is left of it, if less), so a slow but steady upload
    gets through and one byte per window does not. Past `max_connections` a connection
    is closed to make room: an idle kept-alive one first, else the oldest still sending
    its head, else the slowest body below the pace; when all are busy with real
    requests the newcomer is answered 503.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 500
    min_body_bytes: int = 1024

    def body_slow(self, received: int, elapsed: float) -> bool:
        """True when `received` body bytes in `elapsed` seconds are below the pace
        (judged over at least one window, so a body that just started is slow)."""
        window = max(elapsed, self.body_timeout)
        return received * self.body_timeout < self.min_body_bytes * window

    @classmethod
    def from_environment(cls) -> ReadLimits:
        connections = int(_positive(MAX_CONNECTIONS_VARIABLE, cls.max_connections))
        # Half the open-file limit at most: the workers, logs and emulator need the rest.
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY:
            connections = min(connections, max(16, soft // 2))
        return cls(
            header_timeout=_positive(HEADER_TIMEOUT_VARIABLE, cls.header_timeout),
            body_timeout=_positive(BODY_TIMEOUT_VARIABLE, cls.body_timeout),
            max_connections=connections,
        )
