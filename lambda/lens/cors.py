"""CORS on top of Powertools' CORSConfig: echo an allowed Origin, always say Vary: Origin.

Powertools answers "*" when any origin is allowed and adds no Vary header; browsers and
caches are better served by echoing the request's Origin and marking every response as
varying by Origin (a cached answer for one origin must not be served to another).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_lambda_powertools.event_handler.api_gateway import CORSConfig

# Beyond Powertools' built-ins (Authorization, Content-Type, X-Amz-Date, X-Api-Key,
# X-Amz-Security-Token).
EXTRA_ALLOWED_HEADERS = ["X-Requested-With"]
EXPOSED_HEADERS = ["Retry-After", "X-Request-Id"]
PREFLIGHT_MAX_AGE = 600  # seconds browsers may cache a preflight answer


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

    def is_allowed(self, origin: str | None) -> bool:
        if not origin:
            return False
        return self._any or origin.rstrip("/") in self._allowed_origins

    def allowed_origin(self, extracted_origin: str) -> str | None:
        return extracted_origin if self.is_allowed(extracted_origin) else None

    def to_dict(self, origin: str | None) -> dict[str, str]:
        if origin is None or not self.is_allowed(origin):
            return {"Vary": "Origin"}
        headers = {
            "Access-Control-Allow-Origin": origin,
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
