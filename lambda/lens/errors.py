"""The one error type every route raises, and the JSON body clients get for it.

Body: {"error": {"code": "<stable snake_case>", "message": "<a sentence>"}, "request_id": ...}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiError(Exception):
    """A failure with an HTTP status, a stable code and a message a person understands.

    Never put exception reprs, paths or secrets in `message`: it goes to the client.
    """

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def body(self, request_id: str | None) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}, "request_id": request_id}
