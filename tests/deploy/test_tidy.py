"""One owner per fact, and the deploy core's import direction (fast, no server)."""

from __future__ import annotations

import ast
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
