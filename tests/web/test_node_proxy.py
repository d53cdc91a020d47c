"""Run the web client's node tests (the Vercel proxy function and the page's wording)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

WEB_CLIENT = Path(__file__).resolve().parents[2] / "web-client"

pytestmark = pytest.mark.node


def test_node_test_runner_passes() -> None:
    node = shutil.which("node")
    assert node, "node is required for the web client's tests (.ci/run installs it)"
    # Files listed explicitly and the TAP reporter named: the same command on node 18-24
    # (node 21+ reads arguments as globs; node 23+ defaults to the spec reporter).
    files = sorted(str(p.relative_to(WEB_CLIENT)) for p in (WEB_CLIENT / "test").glob("*.test.mjs"))
    assert len(files) >= 3, files
    result = subprocess.run(
        [node, "--test", "--test-reporter=tap", *files],
        cwd=WEB_CLIENT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    passed = re.search(r"^# pass (\d+)$", output, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", output, re.MULTILINE)
    assert passed and int(passed.group(1)) >= 40, output[-2000:]
    assert failed and int(failed.group(1)) == 0, output[-2000:]
