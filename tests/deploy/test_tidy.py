"""One owner per fact, and the deploy core's import direction (fast, no server)."""

from __future__ import annotations

import ast
import json
from html.parser import HTMLParser
from pathlib import Path

from tests.deploy.conftest import REPO

TOOLING = REPO / "tooling" / "scarab"
# The command modules: they use the deploy library, never the reverse.
COMMANDS = {
    "scarab.cli", "scarab.keys", "scarab.secrets", "scarab.status", "scarab.invoke",
    "scarab.logs", "scarab.stage", "scarab.serve",
}  # fmt: skip


def _strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module, docstrings excluded."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def test_deploy_never_imports_command_modules() -> None:
    found = []
    for path in sorted((TOOLING / "deploy").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            for mod in mods:
                if any(mod == c or mod.startswith(c + ".") for c in COMMANDS):
                    found.append(f"{path.name}:{node.lineno} imports {mod}")
    assert found == []


def test_one_module_spells_the_scarab_directory() -> None:
    found = [
        f"{path.relative_to(TOOLING)}:{line}"
        for path in sorted(TOOLING.rglob("*.py"))
        if path.name != "layout.py"
        for line, text in _strings(path)
        if text == ".scarab" or text.startswith(".scarab/")
    ]
    assert found == []


def test_one_helper_holds_the_emulators_fake_credentials() -> None:
    found = [
        f"{path.relative_to(TOOLING)}:{line}"
        for path in sorted(TOOLING.rglob("*.py"))
        if path.name != "emulator.py"
        for line, text in _strings(path)
        if text in {"testing", "scarab-local"}
    ]
    assert found == []


class _SelectOptions(HTMLParser):
    """The option values of one <select id=...> of a page, and which is selected."""

    def __init__(self, select_id: str) -> None:
        super().__init__()
        self.select_id = select_id
        self.inside = False
        self.values: list[str] = []
        self.selected: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "select":
            self.inside = named.get("id") == self.select_id
        elif tag == "option" and self.inside:
            self.values.append(str(named.get("value")))
            if "selected" in named:
                self.selected.append(str(named.get("value")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.inside = False


def test_the_speed_tiers_agree_everywhere_they_are_spelled() -> None:
    # The CLI cannot import lens (the function's package and dependencies), so it keeps
    # one copy (scarab.speeds); every other spelling derives from lens.settings.TIERS.
    from lens.openapi import openapi_json
    from lens.responses import _ALLOWED_VALUES
    from lens.schema import AnalyzeRequest
    from lens.settings import DEFAULT_TIER, TIERS
    from scarab.speeds import DEFAULT_SPEED, SPEEDS, SPEEDS_SPOKEN

    assert SPEEDS == TIERS == ("regular", "fast", "super-fast")
    assert DEFAULT_SPEED == DEFAULT_TIER == AnalyzeRequest.model_fields["speed"].default
    assert _ALLOWED_VALUES["speed"] == SPEEDS_SPOKEN == "regular, fast or super-fast"
    schema = json.loads(openapi_json())["components"]["schemas"]["AnalyzeRequest"]
    assert schema["properties"]["speed"]["enum"] == list(SPEEDS)
    assert schema["properties"]["speed"]["default"] == DEFAULT_SPEED
    page = _SelectOptions("speed")
    page.feed((REPO / "web-client" / "public" / "index.html").read_text())
    assert page.values == list(SPEEDS)
    assert page.selected == [DEFAULT_SPEED]


def test_only_scarab_speeds_spells_the_tiers_in_the_cli() -> None:
    found = [
        f"{path.relative_to(TOOLING)}:{line}"
        for path in sorted(TOOLING.rglob("*.py"))
        if path.name != "speeds.py"
        for line, text in _strings(path)
        if "super-fast" in text
    ]
    assert found == []


def _names(path: Path) -> list[tuple[int, str]]:
    """Every name a module uses: variables, attributes and imported names."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Name):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def test_only_the_serve_record_module_touches_serve_json() -> None:
    # scarab.serve.record.ServeRecord writes, reads (a stale or corrupt file is None) and
    # removes it; serve, invoke, deploy and the test harness all go through it.
    owner = TOOLING / "serve" / "record.py"
    modules = [*TOOLING.rglob("*.py"), *(REPO / "tests" / "support").glob("*.py")]
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for path in sorted(modules)
        if path not in (owner, TOOLING / "layout.py")
        for line, text in [*_strings(path), *_names(path)]
        if "serve.json" in text or text in {"SERVE_RECORD", "SERVE_RECORD_NAME"}
    ]
    assert found == []


def _hand_rolled_aws_handlers(path: Path) -> list[tuple[str, int]]:
    """(function, line) of each `except ScarabError: raise` guard, and of each except block
    that raises explain(...): what scarab.aws.aws_errors() does, spelled again."""
    tree = ast.parse(path.read_text())
    within: dict[int, str] = {}  # handler line -> the innermost function around it
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(func):
                if isinstance(node, ast.ExceptHandler):
                    within[node.lineno] = func.name  # inner functions are walked later
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ExceptHandler) or node.type is None:
            continue
        guard = (
            "ScarabError" in ast.unparse(node.type)
            and len(node.body) == 1
            and isinstance(node.body[0], ast.Raise)
            and node.body[0].exc is None
        )
        explains = any(
            isinstance(r, ast.Raise)
            and isinstance(r.exc, ast.Call)
            and isinstance(r.exc.func, ast.Name)
            and r.exc.func.id == "explain"
            for r in ast.walk(node)
        )
        if guard or explains:
            found.append((within.get(node.lineno, "<module>"), node.lineno))
    return found


def test_aws_errors_become_advice_through_one_context_manager() -> None:
    # status, logs, unlock, keys and the stage checks use `with aws_errors(...)` (its
    # `advice` maps an error code to the command's own sentence, e.g. a missing log group).
    # Taking the stage lock wraps the advice in what the failure means ("Nothing was changed").
    allowed = {("aws.py", "aws_errors"), ("deploy/lock.py", "_acquire")}
    found = [
        f"{path.relative_to(TOOLING)}:{line} in {func}"
        for path in sorted(TOOLING.rglob("*.py"))
        for func, line in _hand_rolled_aws_handlers(path)
        if (str(path.relative_to(TOOLING)), func) not in allowed
    ]
    assert found == []
