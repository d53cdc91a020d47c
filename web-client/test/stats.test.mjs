// The Vercel function for the dashboard (api/stats.js): GET {SCARAB_API_URL}/stats with
// the key added server-side, only `since` passed on, and the key never leaving.
import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { handleStats } from "../api/stats.js";
import { startUpstream } from "../test-support/upstream.mjs";

const KEY = "test-scarab-key-DO-NOT-LEAK-5a4b3c";
const SITE = "scarab.example.com";
let upstream;
let env;
let originalLog;

before(async () => {
  upstream = await startUpstream();
  originalLog = console.log;
  console.log = () => {};
});
after(async () => {
  console.log = originalLog;
  await upstream.close();
});
beforeEach(() => {
  upstream.requests.length = 0;
  upstream.replies.length = 0;
  env = { SCARAB_API_URL: `${upstream.url}/default/`, SCARAB_API_KEY: KEY };
});

const get = (query, headers = {}) =>
  new Request(`https://${SITE}/api/stats${query}`, { headers: { host: SITE, ...headers } });

test("forwards GET /stats?since= with x-api-key, and nothing else of the query", async () => {
  upstream.reply(200, { since: "7d", requests: { total: 3, by_hour: [] } });
  const response = await handleStats(get("?since=7d&key=x&other=1", { origin: `https://${SITE}` }), env);
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { since: "7d", requests: { total: 3, by_hour: [] } });
  const [sent] = upstream.requests;
  assert.equal(sent.method, "GET");
  assert.equal(sent.url, "/default/stats?since=7d");
  assert.equal(sent.headers["x-api-key"], KEY);
  assert.equal(response.headers.get("cache-control"), "no-store");
});

test("without since the API's default applies; errors pass through", async () => {
  upstream.reply(503, { error: { code: "log_unavailable", message: "The prediction log is off." } });
  const response = await handleStats(get(""), env);
  assert.equal(upstream.requests[0].url, "/default/stats");
  assert.equal(response.status, 503);
  assert.equal((await response.json()).error.code, "log_unavailable");
});

test("a foreign origin is refused and the key never goes back out", async () => {
  const refused = await handleStats(get("?since=1h", { origin: "https://evil.example" }), env);
  assert.equal(refused.status, 403);
  assert.equal(upstream.requests.length, 0);
  upstream.reply(200, { echoed: KEY });
  const text = await (await handleStats(get("?since=1h"), env)).text();
  assert.ok(!text.includes(KEY));
});

test("not configured is a 500 that says what is missing", async () => {
  const response = await handleStats(get(""), { SCARAB_API_URL: "" });
  assert.equal(response.status, 500);
  assert.equal((await response.json()).error.code, "proxy_not_configured");
});
