"""Review 1: the Vercel proxy follows an upstream redirect, carrying x-api-key along.

fetch() follows 301/302/303 by default and, across origins, drops only Authorization
and Cookie: a custom `x-api-key` goes to whatever host the Location names. Runs the
real `api/analyze.js` under node against two real HTTP servers on loopback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ANALYZE_JS = Path(__file__).resolve().parents[2] / "web-client" / "api" / "analyze.js"

pytestmark = pytest.mark.node

SCRIPT = """
import http from "node:http";
import { handleAnalyze } from %(module)s;
console.log = () => {};
const listen = (h) => new Promise((r) => {
  const s = http.createServer(h);
  s.listen(0, "127.0.0.1", () => r(s));
});
const seen = [];
const other = await listen((req, res) => {
  seen.push(req.headers["x-api-key"] ?? null);
  req.resume();
  res.end("{}");
});
const elsewhere = `http://127.0.0.1:${other.address().port}/elsewhere`;
const upstream = await listen((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(%(status)d, { location: elsewhere });
    res.end();
  });
});
const env = {
  SCARAB_API_URL: `http://127.0.0.1:${upstream.address().port}/default`,
  SCARAB_API_KEY: "review1-secret-key",
  SCARAB_PROXY_TIMEOUT_MS: "5000",
};
const request = new Request("https://site.example/api/analyze", {
  method: "POST",
  headers: { host: "site.example", "content-type": "application/json" },
  body: "{}",
});
const response = await handleAnalyze(request, env);
process.stdout.write(JSON.stringify({ status: response.status, seen }) + "\\n");
other.close();
upstream.close();
process.exit(0);
"""


@pytest.mark.parametrize("status", [301, 302, 303])
def test_an_upstream_redirect_does_not_carry_the_key_elsewhere(status: int) -> None:
    node = shutil.which("node")
    assert node, "node is required for the web client's tests"
    script = SCRIPT % {"module": json.dumps(ANALYZE_JS.as_uri()), "status": status}
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["seen"] == [], f"the key went to the redirect target: {outcome}"
    assert outcome["status"] != 200, f"a {status} from the API was answered as 200: {outcome}"
