"""Every `curl` example in README.md, run with the real curl against a real `scarab serve`.

The examples are read from the README's code blocks (shlex, with line continuations and
multi-line quotes), their placeholders filled with real values ($API, $KEY, tomb.jpg, a
drawn digit), and each must answer 200 with every JSON field the README documents for it:
the `→ {...}` line under the command, or the ```json block after the code block. So the
README cannot drift from what works.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.predict.drawing import b64 as png_b64
from tests.predict.drawing import draw_digit
from tests.serve.conftest import Shared

pytestmark = pytest.mark.emulator

README = Path(__file__).resolve().parents[2] / "README.md"
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Example:
    """One curl command of the README and what the README says it answers."""

    line: int  # 1-based line of README.md where the command starts
    text: str  # the command as written
    argv: list[str]
    documented: Any = None  # the documented JSON body (placeholders relaxed)
    placeholders: list[str] = field(default_factory=list)


def relaxed_json(text: str) -> Any:
    """The README's abbreviated JSON (`{...}`, `, ...`) as JSON: elided parts dropped."""
    text = text.replace("{...}", "{}").replace("[...]", "[]").replace(", ...", "")
    return json.loads(text)


def _split(command: str) -> list[str] | None:
    """argv of a shell command; None while a quote is still open (it goes on next line)."""
    lexer = shlex.shlex(command, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:
        return None


def readme_examples(text: str) -> list[Example]:
    """Every curl command in the README's code blocks, with its documented answer."""
    examples: list[Example] = []
    lines = text.splitlines()
    in_block, lang = False, ""
    block: list[tuple[int, str]] = []
    pending: list[Example] = []  # commands of the last code block with no `→` line
    for number, line in enumerate(lines, 1):
        fence = _FENCE.match(line)
        if fence and not in_block:
            in_block, lang, block = True, fence.group(1), []
            continue
        if fence and in_block:
            in_block = False
            if lang == "json":
                for example in pending:
                    example.documented = relaxed_json("\n".join(t for _, t in block))
                pending = []
            else:
                found = _commands(block)
                examples += found
                pending = [e for e in found if e.documented is None]
            continue
        if in_block:
            block.append((number, line))
    return examples


def _commands(block: list[tuple[int, str]]) -> list[Example]:
    found: list[Example] = []
    i = 0
    while i < len(block):
        number, line = block[i]
        if line.lstrip().startswith("→") and found:
            found[-1].documented = relaxed_json(line.lstrip().removeprefix("→").strip())
            i += 1
            continue
        if not line.lstrip().startswith("curl "):
            i += 1
            continue
        command = line
        argv = None
        while True:
            if command.endswith("\\"):
                command = command[:-1]  # a line continuation joins the next line
            else:
                argv = _split(command)
                if argv is not None:
                    break
            i += 1
            assert i < len(block), f"README.md:{number}: the curl command never ends"
            command += "\n" + block[i][1]
        found.append(Example(number, command, argv))
        i += 1
    return found


def _examples() -> list[Example]:
    return readme_examples(README.read_text())


def test_every_curl_line_of_the_readme_is_an_example() -> None:
    text = README.read_text()
    in_block = False
    curl_lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            in_block = not in_block
        elif in_block and line.lstrip().startswith("curl "):
            curl_lines.append(number)
    examples = _examples()
    assert [e.line for e in examples] == curl_lines
    assert len(examples) >= 5  # analyze (JSON and raw), models, digits, tabular
    for example in examples:
        assert example.documented is not None, f"README.md:{example.line} documents no answer"


def test_the_parser_reads_continuations_and_quote_concatenation() -> None:
    block = """```
curl -X POST "$API/x" -H 'a: b' \\
     -d '{"image": "'"$(base64 -w0 tomb.jpg)"'", "n": 1}'
→ {"ok": true, "rest": {...}, "list": [1, ...]}
curl "$API/y" -d '{
  "multi": "line"}'
```"""
    first, second = readme_examples(block)
    assert first.argv == [
        "curl",
        "-X",
        "POST",
        "$API/x",
        "-H",
        "a: b",
        "-d",
        '{"image": "$(base64 -w0 tomb.jpg)", "n": 1}',
    ]
    assert first.documented == {"ok": True, "rest": {}, "list": [1]}
    assert second.argv == ["curl", "$API/y", "-d", '{\n  "multi": "line"}']


def tomb_jpeg() -> bytes:
    """A real JPEG photo-sized image (a painted-wall-like pattern)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (800, 600), (196, 160, 110))
    pen = ImageDraw.Draw(image)
    for i in range(0, 800, 40):
        pen.rectangle((i, 100, i + 20, 500), fill=(30 + i % 200, 80, 150))
    pen.ellipse((300, 200, 500, 400), fill=(200, 40, 30))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _a_job(shared: Shared) -> str:
    """The id of a job just started on the shared stage (what `$JOB_ID` stands for)."""
    from tests.serve.support import http, tiny_jpeg_b64

    body = json.dumps({"image": tiny_jpeg_b64(), "speed": "fast"}).encode()
    headers = {"x-api-key": shared.key, "Content-Type": "application/json"}
    started = http(f"{shared.api}/jobs", "POST", body, headers)
    assert started.status == 202, started.body
    return str(started.json()["job_id"])


def fill(example: Example, shared: Shared, workdir: Path) -> list[str]:
    """argv with every placeholder replaced by a real value; fails on one it does not know."""
    jpeg = (workdir / "tomb.jpg").read_bytes()
    values = {
        "$(base64 -w0 tomb.jpg)": base64.b64encode(jpeg).decode(),
        "$(uuidgen)": str(uuid.uuid4()),
        "<base64 PNG of one digit>": png_b64(draw_digit(3)),
        "$API": shared.api,
        "$KEY": shared.key,
    }
    if "$JOB_ID" in example.text:
        values["$JOB_ID"] = _a_job(shared)
    argv = []
    for arg in example.argv:
        for placeholder, value in values.items():
            arg = arg.replace(placeholder, value)
        leftover = re.findall(r"\$\w+|\$\(|<[^>]+>|\.\.\.", arg)
        assert not leftover, f"README.md:{example.line}: no value for {leftover}"
        argv.append(arg)
    return argv


def run_curl(argv: list[str], workdir: Path) -> tuple[int, bytes]:
    """Run the real curl (no ~/.curlrc, no proxy); returns (status, body)."""
    curl = shutil.which("curl")
    assert curl, "curl is not installed (apt-get install curl; .ci/run installs it)"
    assert argv[0] == "curl"
    out = workdir / "response.body"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    done = subprocess.run(
        [curl, "-q", "-sS", "--max-time", "90", "-o", str(out), "-w", "%{http_code}", *argv[1:]],
        cwd=workdir, capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"curl failed: {done.stderr}"
    return int(done.stdout), out.read_bytes()


def assert_documented(got: Any, documented: Any, where: str) -> None:
    """`got` has every field `documented` shows, of the same JSON type, recursively."""
    if isinstance(documented, dict):
        assert isinstance(got, dict), f"{where}: expected an object, got {got!r}"
        for key, value in documented.items():
            assert key in got, f"{where}: no field {key!r} in {sorted(got)}"
            assert_documented(got[key], value, f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(got, list), f"{where}: expected a list, got {got!r}"
        if documented:
            assert got, f"{where}: the list is empty"
            assert_documented(got[0], documented[0], f"{where}[0]")
    elif isinstance(documented, bool) or documented is None:
        assert got is documented or type(got) is type(documented), f"{where}: {got!r}"
    elif isinstance(documented, int | float):
        assert isinstance(got, int | float) and not isinstance(got, bool), f"{where}: {got!r}"
    else:
        assert isinstance(got, type(documented)), f"{where}: {got!r}"


@pytest.mark.parametrize("example", _examples(), ids=lambda e: f"README.md:{e.line}")
def test_readme_curl_example_answers_as_documented(
    example: Example, shared: Shared, tmp_path: Path
) -> None:
    (tmp_path / "tomb.jpg").write_bytes(tomb_jpeg())
    argv = fill(example, shared, tmp_path)
    status, body = run_curl(argv, tmp_path)
    # A job is asked for again until it is done, as its README example shows it done.
    deadline = time.monotonic() + 60
    while "$JOB_ID" in example.text and json.loads(body).get("status") in ("queued", "running"):
        assert time.monotonic() < deadline, f"README.md:{example.line}: the job never finished"
        time.sleep(0.2)
        status, body = run_curl(argv, tmp_path)
    # 200, or what a creating POST answers: 201 (an upload grant), 202 (a job).
    assert status in (200, 201, 202), f"README.md:{example.line} answered {status}: {body[:500]!r}"
    assert_documented(json.loads(body), example.documented, f"README.md:{example.line}")
