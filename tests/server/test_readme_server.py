"""README.md's "Running the server" section, run as written: its `$ ...` commands read from
the README, the server command started (from the project root, on a free port instead of
8080), each curl run with the real curl and its output checked against the JSON the README
shows under it (every documented field, of the same type)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.serve.test_readme import README, assert_documented, relaxed_json
from tests.server.support import REPO, request
from tests.support.ports import free_port

HEADING = "## Running the server"
PORT = "8080"


@dataclass
class Command:
    line: int
    argv: list[str]
    env: dict[str, str]
    output: list[str]


def section_commands(text: str) -> list[Command]:
    """Every `$ ` line of the section's console blocks, with the lines printed under it."""
    lines = text.splitlines()
    start = lines.index(HEADING)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    commands: list[Command] = []
    in_block = False
    for number in range(start, end):
        line = lines[number]
        if line.startswith("```"):
            in_block = line == "```console"
            continue
        if not in_block:
            continue
        if line.startswith("$ "):
            words = shlex.split(line[2:])
            env = {}
            while words and "=" in words[0] and not words[0].startswith("-"):
                name, _, value = words.pop(0).partition("=")
                env[name] = value
            commands.append(Command(number + 1, words, env, []))
        elif commands:
            commands[-1].output.append(line)
    return commands


def test_the_section_runs_as_documented(tmp_path: Path) -> None:
    commands = section_commands(README.read_text())
    [server_command] = [c for c in commands if "lens.server" in c.argv]
    curls = [c for c in commands if c.argv[0] == "curl"]
    assert len(curls) == len(commands) - 1 >= 3
    port = str(free_port())
    assert PORT in server_command.argv
    argv = [port if word == PORT else word for word in server_command.argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCARAB_", "AWS_"))}
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        argv, cwd=REPO, env={**env, **server_command.env}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if request(f"http://127.0.0.1:{port}", "GET", "/ping")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the README's server never answered /ping"
            time.sleep(0.1)
        curl = shutil.which("curl")
        assert curl, "curl is not installed"
        for command in curls:
            words = [w.replace(f"127.0.0.1:{PORT}", f"127.0.0.1:{port}") for w in command.argv]
            done = subprocess.run(
                [curl, "-q", *words[1:], "-w", "\n%{http_code}"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            body, _, status = done.stdout.rpartition("\n")
            where = f"README.md:{command.line}"
            assert status == "200", f"{where}: {status} {body[:300]}"
            documented: Any = relaxed_json("\n".join(command.output))
            assert_documented(json.loads(body), documented, where)
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
