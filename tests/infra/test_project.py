"""The project's own promises: the console script, the README's two commands, CI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scarab_console_script_runs_from_the_venv() -> None:
    script = Path(sys.executable).with_name("scarab")
    assert script.exists(), "scarab is not installed in this interpreter's environment"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_readme_commands_are_the_makefile_targets() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^make (\w+)$", readme, flags=re.MULTILINE)
    assert commands[:2] == ["demo", "test"], "README must open with `make demo` and `make test`"
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), target


def test_handler_path_is_the_one_docker_and_zip_use() -> None:
    dockerfile = (ROOT / "lambda" / "Dockerfile").read_text()
    assert 'CMD ["lens.handler.lambda_handler"]' in dockerfile


def test_ci_script_runs_make_test_and_installs_chromium() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "chromium" in ci


def _requirement_lines(path: Path, seen: set[Path]) -> list[tuple[Path, str]]:
    """(file, requirement) for every line of `path` and the files it includes with -r."""
    path = path.resolve()
    assert path.is_file(), f"{path} is included but missing"
    if path in seen:
        return []
    seen.add(path)
    lines: list[tuple[Path, str]] = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r"):
            lines += _requirement_lines(path.parent / line[2:].strip(), seen)
        elif line:
            lines.append((path, line))
    return lines


def test_requirements_are_pinned_and_agree() -> None:
    seen: set[Path] = set()
    lines = _requirement_lines(ROOT / "requirements.txt", seen)
    pins: dict[str, str] = {}
    for path, line in lines:
        assert "==" in line, f"{path.relative_to(ROOT)}: {line} is not pinned"
        name, _, version = line.partition("==")
        key = name.split("[")[0].strip().lower().replace("_", "-")
        assert pins.setdefault(key, version) == version, f"{key} is pinned twice, differently"
    # Every function's list is reached from the dev requirements (so .venv has it).
    for path in (ROOT / "lambda" / "requirements").glob("*.txt"):
        assert path.resolve() in seen, f"{path.relative_to(ROOT)} is not included"
