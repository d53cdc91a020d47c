"""README's "ECS Fargate" section, run: its [fargate] block is the project's config and
each of its console commands runs with the real CLI against the moto server."""

from __future__ import annotations

import json
import re
import shlex

from scarab.config import load_config

from tests.fargate.conftest import REPO, Project

FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)


def section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## ECS Fargate")
    return text[start : text.index("\n## ", start + 1)]


def blocks(kind: str) -> list[str]:
    return [body for lang, body in FENCE.findall(section()) if lang == kind]


def test_readme_fargate_commands(fargate_project: Project) -> None:
    [toml] = blocks("toml")
    [console] = blocks("console")
    p = fargate_project
    p.set_config('app = "scarab"\nstage = "dev"\n\n' + toml)
    f = load_config(p.root).fargate
    assert (f.cpu, f.memory, f.port, f.allowed_cidrs) == (256, 512, 8080, ["203.0.113.0/24"])
    commands = [shlex.split(line[2:]) for line in console.splitlines() if line.startswith("$ ")]
    assert [c[:2] for c in commands] == [
        ["scarab", "plan"], ["scarab", "deploy"], ["scarab", "status"],
        ["scarab", "keys"], ["scarab", "keys"], ["scarab", "destroy"],
    ]  # fmt: skip
    outputs = [p.ok(*argv[1:]) for argv in commands]
    plan = json.loads(outputs[0])
    assert plan["stage"] == "dev" and plan["steps"]
    assert "Deployed stage dev on Fargate" in outputs[1]
    assert "service:        scarab-dev (ACTIVE)" in outputs[2]
    assert "Rotated in scarab-dev-key-2" in outputs[3]
    listed = outputs[4].splitlines()
    assert [line.split()[1] for line in listed] == ["scarab-dev-key-1", "scarab-dev-key-2"]
    assert "resources removed" in outputs[5]
