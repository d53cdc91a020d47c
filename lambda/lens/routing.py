"""Routers that remember what they declare, so lens never reads Powertools' private tables.

Powertools answers 404 for a known path requested with another method; lens answers 405
with an Allow header instead, which needs "which methods does this path take". The
resolver keeps that in private lists, so each lens
Router records its own (rule, method) pairs as routes are declared through the public
`Router.route` (which `get`, `post`, ... call), and `allowed_methods` matches a path
against them the way Powertools matches a rule (tests/function/test_functions.py checks
the two agree, and fails if Powertools changes how a `<name>` segment matches).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router

# Characters a `<name>` path segment matches in Powertools (RFC 3986 safe and unsafe
# URI characters and word characters): everything but "/" and a few others.
_SEGMENT = r"[-._~()'!*:@,;=+&$%<> \[\]{}|^\w]+"
_PARAM = re.compile(r"<(\w+)>")


class LensRouter(Router):
    """A Powertools Router that also lists the routes declared on it, in order."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Powertools leaves it untyped
        # (rule, METHOD), e.g. ("/predict/<model_id>", "POST")
        self.declared: list[tuple[str, str]] = []

    def route(
        self, rule: str, method: str | list[str] | tuple[str], *args: Any, **kwargs: Any
    ) -> Callable[[Any], Any]:
        methods = (method,) if isinstance(method, str) else tuple(method)
        self.declared.extend((rule, m.upper()) for m in methods)
        return super().route(rule, method, *args, **kwargs)


def api_path(rule: str) -> str:
    """A Powertools rule as API Gateway writes it: '/predict/<id>' -> '/predict/{id}'."""
    return _PARAM.sub(r"{\1}", rule)


@lru_cache(maxsize=64)
def _rule_regex(rule: str) -> re.Pattern[str]:
    # split with a capturing group alternates literal text and parameter names.
    parts = _PARAM.split(rule)
    pattern = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>{_SEGMENT})" for i, part in enumerate(parts)
    )
    return re.compile(f"^{pattern}$")


def rule_matches(rule: str, path: str) -> bool:
    """Whether Powertools routes `path` to `rule` ('/predict/<id>' matches '/predict/x')."""
    return _rule_regex(rule).match(path) is not None


def declared_routes(routers: Iterable[LensRouter]) -> list[tuple[str, str]]:
    """Every (rule, METHOD) the routers declare, in declaration order."""
    return [pair for router in routers for pair in router.declared]


def allowed_methods(routers: Iterable[LensRouter], path: str) -> list[str]:
    """The methods some route of `routers` accepts at `path`, sorted (empty: unknown path)."""
    return sorted({m for rule, m in declared_routes(routers) if rule_matches(rule, path)})
