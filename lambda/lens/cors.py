"""CORS on top of Powertools' CORSConfig: echo an allowed Origin, always say Vary: Origin.

Powertools answers "*" when any origin is allowed and adds no Vary header; browsers and
caches are better served by echoing the request's Origin and marking every response as
varying by Origin (a cached answer for one origin must not be served to another).

Only a well-formed origin is ever echoed (`canonical_origin`), even when any is allowed,
and in its canonical form (scheme and host lowercase, as browsers send it): CR/LF, paths,
userinfo or a leading-zero port never reach the header, and a cache sees one spelling.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from aws_lambda_powertools.event_handler.api_gateway import CORSConfig

# Beyond Powertools' built-ins (Authorization, Content-Type, X-Amz-Date, X-Api-Key,
# X-Amz-Security-Token).
EXTRA_ALLOWED_HEADERS = ["Idempotency-Key", "X-Requested-With"]
EXPOSED_HEADERS = ["Retry-After", "X-Request-Id"]
PREFLIGHT_MAX_AGE = 600  # seconds browsers may cache a preflight answer


_SCHEMES = ("http", "https")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_DOTTED_NUMBERS = re.compile(r"[0-9.]+")
MAX_HOSTNAME = 253


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        address = host[1:-1]
        if "%" in address:  # zone ids are local to one machine, never in an Origin
            return False
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            return False
        return True
    if _DOTTED_NUMBERS.fullmatch(host):  # looks like IPv4: must be one (no 1.2.3, 01.2.3.4)
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
        return True
    labels = host.split(".")
    return len(host) <= MAX_HOSTNAME and all(_LABEL.fullmatch(label) for label in labels)


def _valid_port(port: str) -> bool:
    # No leading zeros: "080" is not how a browser writes port 80 (nor is 443 "0443").
    return (
        port.isascii()
        and port.isdigit()
        and len(port) <= 5
        and not port.startswith("0")
        and 1 <= int(port) <= 65535
    )


def canonical_origin(origin: str, *, credentials: bool = False) -> str | None:
    """`origin` as a browser serialises it (scheme and host lowercase), when it may be
    echoed in Access-Control-Allow-Origin; None otherwise. Echoable: scheme://host[:port]
    with scheme http or https, host a hostname, an IPv4 address or a [IPv6] address, port
    1-65535 without leading zeros; no path, query, userinfo, whitespace or control
    characters. The opaque origin "null" passes only without credentials (any sandboxed
    page sends it)."""
    if origin == "null":
        return None if credentials else origin
    if not origin.isascii() or not origin.isprintable() or " " in origin:
        return None
    scheme, separator, authority = origin.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in _SCHEMES or not authority:
        return None
    if any(c in authority for c in "/?#@\\"):
        return None
    host, port = authority, None
    if authority.startswith("["):
        end = authority.find("]") + 1
        host, rest = authority[:end], authority[end:]
        if end == 0 or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else None
    elif ":" in authority:
        host, _, port = authority.partition(":")
    if not _valid_host(host) or (port is not None and not _valid_port(port)):
        return None
    return f"{scheme}://{host.lower()}" + (f":{port}" if port is not None else "")


def echoable_origin(origin: str, *, credentials: bool = False) -> bool:
    """Whether `origin` may be echoed (see canonical_origin)."""
    return canonical_origin(origin, credentials=credentials) is not None


class EchoCORSConfig(CORSConfig):
    """A CORSConfig that reflects the allowed request Origin instead of '*'."""

    def __init__(self, origins: Sequence[str]) -> None:
        allowed = [o for o in origins if o] or ["null-origin-never-matches"]
        super().__init__(
            allow_origin=allowed[0],
            extra_origins=allowed[1:],
            allow_headers=EXTRA_ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=PREFLIGHT_MAX_AGE,
        )
        self._any = "*" in allowed
        self._canonical = {canonical_origin(o) or o for o in allowed}

    def _echo(self, origin: str | None) -> str | None:
        """The canonical form of an allowed `origin`, what is echoed; None if refused."""
        if not origin:
            return None
        canonical = canonical_origin(origin, credentials=self.allow_credentials)
        if canonical is None or not (self._any or canonical in self._canonical):
            return None
        return canonical

    def is_allowed(self, origin: str | None) -> bool:
        return self._echo(origin) is not None

    def allowed_origin(self, extracted_origin: str) -> str | None:
        return self._echo(extracted_origin)

    def to_dict(self, origin: str | None) -> dict[str, str]:
        echoed = self._echo(origin)
        if echoed is None:
            return {"Vary": "Origin"}
        headers = {
            "Access-Control-Allow-Origin": echoed,
            "Access-Control-Allow-Headers": ",".join(sorted(self.allow_headers)),
            "Access-Control-Expose-Headers": ",".join(self.expose_headers),
            "Vary": "Origin",
        }
        if self.max_age is not None:
            headers["Access-Control-Max-Age"] = str(self.max_age)
        return headers


def cors_headers(config: EchoCORSConfig, origin: str | None) -> dict[str, str]:
    """The CORS headers for a response to a request from `origin` (Vary always)."""
    return config.to_dict(config.allowed_origin(origin) if origin else None)
