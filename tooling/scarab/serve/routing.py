"""Match a request path to a deployed resource the way API Gateway does.

Literal path parts win over `{param}`, which wins over a greedy `{param+}`; a method
matches exactly, else the resource's ANY method.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scarab.serve.snapshot import Method, Resource


@dataclass(frozen=True)
class RouteTarget:
    resource: Resource
    method: Method
    path_parameters: Mapping[str, str]


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: tuple[str, _Node] | None = None
    greedy: tuple[str, Resource] | None = None
    resource: Resource | None = None


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


class Router:
    """A prefix tree over resource paths, built once per snapshot."""

    def __init__(self, resources: Iterable[Resource]) -> None:
        self._root = _Node()
        for resource in resources:
            node = self._root
            parts = _parts(resource.path)
            for i, part in enumerate(parts):
                if part.startswith("{") and part.endswith("+}"):
                    if i == len(parts) - 1:
                        node.greedy = (part[1:-2], resource)
                    break
                if part.startswith("{") and part.endswith("}"):
                    if node.param is None:
                        node.param = (part[1:-1], _Node())
                    node = node.param[1]
                else:
                    node = node.literal.setdefault(part, _Node())
            else:
                node.resource = resource

    def match(self, method: str, path: str) -> RouteTarget | None:
        """The resource and method for `path` (without the stage), or None (no such route)."""
        found = self._find(self._root, _parts(path), 0, {}, method.upper())
        return found

    def _find(
        self, node: _Node, parts: list[str], i: int, params: dict[str, str], verb: str
    ) -> RouteTarget | None:
        if i == len(parts):
            if node.resource is not None:
                target = _method_target(node.resource, verb, params)
                if target is not None:
                    return target
            return None
        child = node.literal.get(parts[i])
        if child is not None:
            found = self._find(child, parts, i + 1, params, verb)
            if found is not None:
                return found
        if node.param is not None:
            name, sub = node.param
            found = self._find(sub, parts, i + 1, {**params, name: parts[i]}, verb)
            if found is not None:
                return found
        if node.greedy is not None:
            name, resource = node.greedy
            return _method_target(resource, verb, {**params, name: "/".join(parts[i:])})
        return None


def _method_target(resource: Resource, verb: str, params: dict[str, str]) -> RouteTarget | None:
    method = resource.methods.get(verb) or resource.methods.get("ANY")
    if method is None:
        return None
    return RouteTarget(resource=resource, method=method, path_parameters=params)
