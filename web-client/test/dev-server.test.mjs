// The same function module behind a real HTTP server (dev-server.mjs): what a browser
// or curl sees, including the page's static files.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { MAX_BODY_BYTES } from "../api/analyze.js";
import { createDevServer } from "../dev-server.mjs";
import { startUpstream } from "../test-support/upstream.mjs";

const KEY = "dev-server-key-must-not-leak-42";
let upstream;
let server;
let base;

before(async () => {
  upstream = await startUpstream();
  server = createDevServer({ SCARAB_API_URL: upstream.url, SCARAB_API_KEY: KEY });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await upstream.close();
});

test("serves the page, and no file of it mentions the key", async () => {
  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /<script type="module" src="app.js">/);
  for (const path of ["/app.js", "/style.css", "/lib/api.js", "/lib/errors.js", "/lib/image.js"]) {
    const response = await fetch(`${base}${path}`);
    assert.equal(response.status, 200, path);
    assert.ok(!(await response.text()).includes(KEY), path);
  }
  assert.equal((await fetch(`${base}/../api/analyze.js`)).status, 404);
});

test("POST /api/analyze over HTTP forwards with the key and passes the status back", async () => {
  upstream.reply(429, { message: "Too Many Requests" });
  const response = await fetch(`${base}/api/analyze`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ image: "data:image/png;base64,AA==" }),
  });
  assert.equal(response.status, 429);
  assert.deepEqual(await response.json(), { message: "Too Many Requests" });
  assert.equal(upstream.requests.at(-1).headers["x-api-key"], KEY);
});

test("an oversized upload over HTTP gets the proxy's 413", async () => {
  const before = upstream.requests.length;
  const response = await fetch(`${base}/api/analyze`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "z".repeat(MAX_BODY_BYTES + 10),
  });
  assert.equal(response.status, 413);
  assert.equal((await response.json()).error.code, "payload_too_large");
  assert.equal(upstream.requests.length, before);
});

test("the upload and job routes over HTTP: forwarded with the key, ids checked first", async () => {
  const id = "fedcba9876543210fedcba9876543210";
  upstream.reply(201, { upload: { key: "uploads/x" } });
  const grant = await fetch(`${base}/api/uploads`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ content_type: "image/jpeg", bytes: 5 }),
  });
  assert.equal(grant.status, 201);
  upstream.reply(202, { job_id: id, status_url: `/jobs/${id}` });
  const job = await fetch(`${base}/api/jobs`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": "same-submission-1" },
    body: "{}",
  });
  assert.equal(job.status, 202);
  upstream.reply(200, { status: "queued" });
  assert.equal((await fetch(`${base}/api/jobs/${id}`)).status, 200);
  const seen = upstream.requests.slice(-3);
  assert.deepEqual(seen.map((r) => [r.method, r.url]), [
    ["POST", "/uploads"],
    ["POST", "/jobs"],
    ["GET", `/jobs/${id}`],
  ]);
  assert.ok(seen.every((r) => r.headers["x-api-key"] === KEY));
  assert.equal(seen[1].headers["idempotency-key"], "same-submission-1");
  const before = upstream.requests.length;
  const bad = await fetch(`${base}/api/jobs/..%2Fstats`);
  assert.equal(bad.status, 404);
  assert.equal((await bad.json()).error.code, "job_not_found");
  assert.equal((await fetch(`${base}/api/jobs/${id}`, { method: "DELETE" })).status, 405);
  const preflight = await fetch(`${base}/api/jobs`, { method: "OPTIONS" });
  assert.match(preflight.headers.get("access-control-allow-headers"), /idempotency-key/);
  assert.equal(upstream.requests.length, before);
});
