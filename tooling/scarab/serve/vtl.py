"""The small part of API Gateway's mapping template language (VTL) MOCK responses use.

Supported: `#set($name = expr)`, `#if(cond)` / `#elseif(cond)` / `#else` / `#end`,
conditions with `==`, `!=`, `&&`, `||`, `!`; expressions: quoted strings, `true` /
`false`, `$name`, `$input.params("Name")` (path, query string, then headers, headers
case-insensitively) and `$context.requestId|stage|httpMethod|resourcePath`.
Setting `$context.responseOverride.header.X` or `$context.responseOverride.status`
overrides the response, as in API Gateway. Text outside directives is output with
`$name` references replaced. Anything else is left as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

_DIRECTIVE = re.compile(r"#(set|if|elseif)\s*\(|#(else|end)\b")
_REFERENCE = re.compile(r"\$!?\{?([A-Za-z][A-Za-z0-9_.]*)\}?")
_PARAMS_CALL = re.compile(r"""^\$input\.params\(\s*(['"])(.*?)\1\s*\)$""")
_OVERRIDE_HEADER = "context.responseOverride.header."


class TemplateError(Exception):
    """The template uses something this subset does not support."""


@dataclass
class Rendered:
    body: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Input:
    path: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]

    def param(self, name: str) -> str:
        if name in self.path:
            return self.path[name]
        if name in self.query:
            return self.query[name]
        lower = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lower:
                return value
        return ""


def _outside_quotes(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """(index, char) for each character of `text` from `start` that is not in quotes."""
    quote = ""
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        else:
            yield i, ch


def _balanced(text: str, start: int) -> int:
    """Index just past the `)` closing the `(` before `start` (quotes respected)."""
    depth = 1
    for i, ch in _outside_quotes(text, start):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise TemplateError("unbalanced parentheses in a directive")


def _split_top(text: str, sep: str) -> list[str]:
    """`text` split on `sep` where it stands outside quotes and parentheses."""
    parts: list[str] = []
    depth = last = 0
    for i, ch in _outside_quotes(text):
        if i < last:
            continue  # inside the separator just split on
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[last:i])
            last = i + len(sep)
    parts.append(text[last:])
    return parts


class _Evaluator:
    def __init__(self, variables: dict[str, object], source: _Input) -> None:
        self.vars = variables
        self.source = source

    def value(self, expr: str) -> object:
        expr = expr.strip()
        if len(expr) >= 2 and expr[0] == expr[-1] and expr[0] in "'\"":
            return expr[1:-1]
        if expr in ("true", "false"):
            return expr == "true"
        call = _PARAMS_CALL.match(expr)
        if call:
            return self.source.param(call.group(2))
        if expr.startswith("$"):
            return self.vars.get(expr.lstrip("$!{").rstrip("}"), "")
        raise TemplateError(f"unsupported expression {expr!r}")

    def condition(self, expr: str) -> bool:
        alternatives = _split_top(expr, "||")
        if len(alternatives) > 1:
            return any(self.condition(a) for a in alternatives)
        conjuncts = _split_top(expr, "&&")
        if len(conjuncts) > 1:
            return all(self.condition(c) for c in conjuncts)
        expr = expr.strip()
        if expr.startswith("!") and not expr.startswith("!="):
            return not self.condition(expr[1:])
        if expr.startswith("(") and expr.endswith(")"):
            return self.condition(expr[1:-1])
        for op in ("==", "!="):
            sides = _split_top(expr, op)
            if len(sides) == 2:
                equal = self.value(sides[0]) == self.value(sides[1])
                return equal if op == "==" else not equal
        return bool(self.value(expr))


def render(
    template: str,
    *,
    path_parameters: Mapping[str, str],
    query: Mapping[str, str],
    headers: Mapping[str, str],
    context: Mapping[str, str],
) -> Rendered:
    """Run `template`; the output body and any response overrides it set."""
    variables: dict[str, object] = {f"context.{k}": v for k, v in context.items()}
    evaluator = _Evaluator(variables, _Input(path_parameters, query, headers))
    out: list[str] = []
    # Each frame: (this branch is active, some branch of this #if already ran, parent active)
    stack: list[tuple[bool, bool, bool]] = []
    active = True
    pos = 0
    while True:
        match = _DIRECTIVE.search(template, pos)
        text = template[pos : match.start() if match else len(template)]
        if active and text:
            out.append(_REFERENCE.sub(lambda m: str(variables.get(m.group(1), m.group(0))), text))
        if match is None:
            break
        keyword = match.group(1) or match.group(2)
        end = match.end()
        argument = ""
        if match.group(1):
            close = _balanced(template, end)
            argument = template[end : close - 1]
            end = close
        if keyword == "set" and active:
            name, _, expr = argument.partition("=")
            variables[name.strip().lstrip("$!{").rstrip("}")] = evaluator.value(expr)
        elif keyword == "if":
            taken = active and evaluator.condition(argument)
            stack.append((taken, taken, active))
            active = taken
        elif keyword in ("elseif", "else"):
            if not stack:
                raise TemplateError(f"#{keyword} without #if")
            _, done, parent = stack.pop()
            taken = parent and not done and (keyword == "else" or evaluator.condition(argument))
            stack.append((taken, done or taken, parent))
            active = taken
        elif keyword == "end":
            if not stack:
                raise TemplateError("#end without #if")
            active = stack.pop()[2]
        pos = end
        if template.startswith("\n", pos):
            pos += 1  # a directive's own line break is not output
    rendered = Rendered(body="".join(out))
    for name, value in variables.items():
        if name.startswith(_OVERRIDE_HEADER):
            rendered.headers[name[len(_OVERRIDE_HEADER) :]] = str(value)
        elif name == "context.responseOverride.status":
            try:
                rendered.status = int(str(value))
            except ValueError as exc:
                raise TemplateError("responseOverride.status is not a number") from exc
    return rendered
