"""The API's routes, defined once (contract shared with `scarab serve` and the function).

Every route is an AWS_PROXY integration to a function: `function` names the entry of
scarab's function catalog (scarab.functions) that serves it, and the all-routes function
of a stage deployed as one function serves every route. Every resource also gets an
OPTIONS MOCK preflight that needs no key and answers with the CORS headers.
tests/function/test_functions.py checks each function's handler registers exactly
the routes this table gives it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    api_key_required: bool
    # The catalog function that serves it (scarab.functions); defaulted only so a
    # Route built with the three fields above still constructs.
    function: str = "analyze"


ROUTES: tuple[Route, ...] = (
    Route("/analyze", "POST", True, function="analyze"),
    Route("/health", "GET", False, function="analyze"),
    Route("/openapi.json", "GET", False, function="analyze"),
    # Presigned uploads and asynchronous jobs (the jobs run in the analyze function).
    Route("/uploads", "POST", True, function="analyze"),
    Route("/jobs", "POST", True, function="analyze"),
    Route("/jobs/{id}", "GET", True, function="analyze"),
    Route("/models", "GET", True, function="models"),
    Route("/predict/{model_id}", "POST", True, function="models"),
    Route("/forecast/{model_id}", "GET", True, function="models"),
    # The prediction log's aggregates: models, so the analyze artifact stays as it was.
    Route("/stats", "GET", True, function="models"),
)

CORS_ALLOW_HEADERS = "Content-Type,X-Api-Key,Authorization"
# Gateway errors a browser must be able to read (403 key, 413 size, 429 throttle, 504 timeout).
GATEWAY_RESPONSE_TYPES = ("DEFAULT_4XX", "DEFAULT_5XX")


def resource_paths(routes: tuple[Route, ...] = ROUTES) -> list[str]:
    """Every resource path the routes need, parents first ('/predict' before its child)."""
    paths: set[str] = set()
    for route in routes:
        parts = route.path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            paths.add("/" + "/".join(parts[:i]))
    return sorted(paths, key=lambda p: (p.count("/"), p))


def routes_for(function: str, routes: tuple[Route, ...] = ROUTES) -> tuple[Route, ...]:
    """The routes `function` serves, in table order (empty for a name the table lacks)."""
    return tuple(r for r in routes if r.function == function)


def route_functions(routes: tuple[Route, ...] = ROUTES) -> list[str]:
    """The functions the routes name, in first-appearance order."""
    return list(dict.fromkeys(r.function for r in routes))


def methods_for(path: str, routes: tuple[Route, ...] = ROUTES) -> list[Route]:
    return [r for r in routes if r.path == path]


def allow_methods(path: str, routes: tuple[Route, ...] = ROUTES) -> str:
    return ",".join(sorted({r.method for r in methods_for(path, routes)} | {"OPTIONS"}))


def cors_origin_expression(origins: list[str]) -> str:
    """The API Gateway mapping expression for Access-Control-Allow-Origin.

    '*' or a single origin is a static value. With several origins a static header
    cannot name them all, so the request's Origin is echoed: the function itself
    checks ALLOWED_ORIGINS on real responses, and gateway errors carry no data.
    """
    if not origins or "*" in origins:
        return "'*'"
    if len(origins) == 1:
        return f"'{origins[0]}'"
    return "method.request.header.Origin"


def preflight_template(origins: list[str]) -> str:
    """The MOCK integration response body template for OPTIONS.

    With several allowed origins, the template echoes the request's Origin only when
    it is one of them (a static mapping cannot choose between origins).
    """
    if cors_origin_expression(origins).startswith("'"):
        return ""
    checks = " || ".join(f'$origin == "{o}"' for o in origins)
    return (
        '#set($origin = $input.params("Origin"))\n'
        '#if($origin == "")#set($origin = $input.params("origin"))#end\n'
        f"#if({checks})\n"
        "#set($context.responseOverride.header.Access-Control-Allow-Origin = $origin)\n"
        "#end"
    )
