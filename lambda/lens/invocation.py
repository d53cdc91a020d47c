"""Per-invocation facts the routes need (request id, deadline, origin), set by the handler,
and the notes routes leave for the prediction log (lens.log): model, model_version,
input_digest, input, tokens_in, tokens_out, cache.

A ContextVar rather than Powertools' resolver context: the routes are shared by three
resolvers, and these facts come from the Lambda context, not from the route match.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


def _no_deadline() -> float:
    return 15 * 60 * 1000.0  # the longest a Lambda function can run


@dataclass(frozen=True)
class Invocation:
    request_id: str
    remaining_ms: Callable[[], float] = _no_deadline
    origin: str | None = None
    body_bytes: int = 0
    started: float = field(default_factory=time.perf_counter)
    # What the route noted about its answer (mutable inside the frozen record: one
    # invocation's, never shared).
    _notes: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def note(self, **facts: Any) -> None:
        """Record facts about the answer for the prediction log (later calls win)."""
        self._notes.update(facts)

    def notes(self) -> dict[str, Any]:
        return dict(self._notes)


_current: ContextVar[Invocation | None] = ContextVar("lens_invocation", default=None)


def current() -> Invocation:
    """The invocation being handled (a placeholder outside the handler, e.g. in tests)."""
    return _current.get() or Invocation(request_id="local")


def begin(invocation: Invocation) -> object:
    """Make `invocation` current; pass the returned token to end()."""
    return _current.set(invocation)


def end(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
