// The upload and job routes (api/uploads.js, api/jobs.js, api/jobs/[id].js): forwarded
// like /analyze, the key added server-side and never returned, Idempotency-Key passed
// on, job ids validated before anything is forwarded.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";

import { MAX_BODY_BYTES } from "../api/analyze.js";
import { handleJob, jobIdOf } from "../api/jobs/[id].js";
import { handleJobs, OPTIONS as jobsOptions } from "../api/jobs.js";
import { handleUploads } from "../api/uploads.js";
import { startUpstream } from "../test-support/upstream.mjs";

const KEY = "jobs-proxy-key-DO-NOT-LEAK-1a2b3c";
const SITE = "scarab.example.com";
const ID = "0123456789abcdef0123456789abcdef";

let upstream;
let env;
let originalLog;
let logs;

before(async () => {
  upstream = await startUpstream();
  originalLog = console.log;
  console.log = (...args) => logs.push(args.join(" "));
});
after(async () => {
  console.log = originalLog;
  await upstream.close();
});
beforeEach(() => {
  upstream.requests.length = 0;
  upstream.replies.length = 0;
  logs = [];
  env = { SCARAB_API_URL: `${upstream.url}/default/`, SCARAB_API_KEY: KEY };
});

const post = (path, body, headers = {}) =>
  new Request(`https://${SITE}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: `https://${SITE}`, ...headers },
    body,
  });
const get = (path, headers = {}) =>
  new Request(`https://${SITE}${path}`, { headers: { origin: `https://${SITE}`, ...headers } });

describe("POST /api/uploads", () => {
  test("forwards the body to {API}/uploads with the key; the answer passes through", async () => {
    const grant = {
      upload: {
        url: "https://b.s3.amazonaws.com/",
        fields: { key: "uploads/ab", "Content-Type": "image/jpeg" },
        key: "uploads/ab",
        expires_at: "2026-01-01T00:00:00Z",
        max_bytes: 52428800,
      },
    };
    upstream.reply(201, grant);
    const body = JSON.stringify({ content_type: "image/jpeg", bytes: 7_000_000 });
    const response = await handleUploads(post("/api/uploads", body), env);
    assert.equal(response.status, 201);
    assert.deepEqual(await response.json(), grant);
    const [seen] = upstream.requests;
    assert.equal(seen.method, "POST");
    assert.equal(seen.url, "/default/uploads");
    assert.equal(seen.headers["x-api-key"], KEY);
    assert.equal(seen.body.toString(), body);
    assert.equal(seen.headers.cookie, undefined);
  });

  test("413 and 415 from the API pass through unchanged", async () => {
    for (const [status, code] of [[413, "upload_too_large"], [415, "unsupported_media_type"]]) {
      upstream.reply(status, { error: { code, message: "no" } });
      const response = await handleUploads(post("/api/uploads", "{}"), env);
      assert.equal(response.status, status);
      assert.equal((await response.json()).error.code, code);
    }
  });

  test("refuses a foreign origin and an unconfigured proxy without calling the API", async () => {
    const foreign = await handleUploads(post("/api/uploads", "{}", { origin: "https://evil.example" }), env);
    assert.equal(foreign.status, 403);
    const bare = await handleUploads(post("/api/uploads", "{}"), {});
    assert.equal(bare.status, 500);
    assert.equal((await bare.json()).error.code, "proxy_not_configured");
    assert.equal(upstream.requests.length, 0);
  });

  test("the key never comes back, even if the API echoes it", async () => {
    upstream.reply(201, { upload: { url: `https://x/?k=${KEY}` } });
    const response = await handleUploads(post("/api/uploads", "{}"), env);
    const text = await response.text();
    assert.ok(!text.includes(KEY));
    assert.ok(!logs.join("\n").includes(KEY));
  });
});

describe("POST /api/jobs", () => {
  test("forwards to {API}/jobs with the key and the Idempotency-Key header", async () => {
    upstream.reply(202, { job_id: ID, status_url: `/jobs/${ID}` });
    const body = JSON.stringify({ upload: "uploads/ab", speed: "regular", imageType: "tomb" });
    const response = await handleJobs(
      post("/api/jobs", body, { "idempotency-key": "3b0c8a4e-1111-4a2b-9c3d-123456789abc" }),
      env,
    );
    assert.equal(response.status, 202);
    assert.deepEqual(await response.json(), { job_id: ID, status_url: `/jobs/${ID}` });
    const [seen] = upstream.requests;
    assert.equal(seen.url, "/default/jobs");
    assert.equal(seen.headers["x-api-key"], KEY);
    assert.equal(seen.headers["idempotency-key"], "3b0c8a4e-1111-4a2b-9c3d-123456789abc");
    assert.equal(seen.body.toString(), body);
  });

  test("without an Idempotency-Key none is invented", async () => {
    upstream.reply(202, { job_id: ID, status_url: `/jobs/${ID}` });
    await handleJobs(post("/api/jobs", "{}"), env);
    assert.equal(upstream.requests[0].headers["idempotency-key"], undefined);
  });

  test("409 with Retry-After passes through", async () => {
    upstream.reply(409, { error: { code: "idempotency_in_progress", message: "wait" } }, { "retry-after": "1" });
    const response = await handleJobs(post("/api/jobs", "{}", { "idempotency-key": "k-1" }), env);
    assert.equal(response.status, 409);
    assert.equal(response.headers.get("retry-after"), "1");
  });

  test("a malformed Idempotency-Key is refused here", async () => {
    const response = await handleJobs(post("/api/jobs", "{}", { "idempotency-key": "x".repeat(300) }), env);
    assert.equal(response.status, 422);
    assert.equal((await response.json()).error.code, "invalid_idempotency_key");
    assert.equal(upstream.requests.length, 0);
  });

  test("bodies over the proxy limit are 413 without contacting the API", async () => {
    const response = await handleJobs(post("/api/jobs", "x".repeat(MAX_BODY_BYTES + 1)), env);
    assert.equal(response.status, 413);
    assert.equal(upstream.requests.length, 0);
  });

  test("the preflight allows the Idempotency-Key header", async () => {
    const saved = process.env.ALLOWED_ORIGINS;
    process.env.ALLOWED_ORIGINS = "https://friend.example";
    try {
      const response = await jobsOptions(
        new Request(`https://${SITE}/api/jobs`, { method: "OPTIONS", headers: { origin: "https://friend.example" } }),
      );
      assert.equal(response.status, 204);
      assert.match(response.headers.get("access-control-allow-headers"), /idempotency-key/);
    } finally {
      if (saved === undefined) delete process.env.ALLOWED_ORIGINS;
      else process.env.ALLOWED_ORIGINS = saved;
    }
  });
});

describe("GET /api/jobs/{id}", () => {
  test("forwards a valid id to {API}/jobs/{id} with the key", async () => {
    const status = { status: "running", timings_ms: { queued: 12 }, created_at: "x", updated_at: "y" };
    upstream.reply(200, status);
    const response = await handleJob(get(`/api/jobs/${ID}`), env);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), status);
    const [seen] = upstream.requests;
    assert.equal(seen.method, "GET");
    assert.equal(seen.url, `/default/jobs/${ID}`);
    assert.equal(seen.headers["x-api-key"], KEY);
  });

  test("the API's 404 passes through", async () => {
    upstream.reply(404, { error: { code: "job_not_found", message: "no" } });
    const response = await handleJob(get(`/api/jobs/${ID}`), env);
    assert.equal(response.status, 404);
  });

  for (const bad of [
    ID.toUpperCase(),
    ID.slice(1),
    `${ID}0`,
    "..%2F..%2Fanalyze",
    "%2e%2e",
    "",
    `${ID.slice(0, 31)}g`,
  ]) {
    test(`a malformed id (${JSON.stringify(bad)}) is 404 job_not_found, never forwarded`, async () => {
      const response = await handleJob(get(`/api/jobs/${bad}`), env);
      assert.equal(response.status, 404);
      assert.equal((await response.json()).error.code, "job_not_found");
      assert.equal(upstream.requests.length, 0);
    });
  }

  test("the id is read from the path, or Vercel's ?id= for the [id] segment", () => {
    assert.equal(jobIdOf(get(`/api/jobs/${ID}`)), ID);
    assert.equal(jobIdOf(get(`/api/jobs/${ID}/`)), ID);
    assert.equal(jobIdOf(get(`/api/jobs/[id]?id=${ID}`)), "[id]");
    assert.equal(jobIdOf(new Request(`https://${SITE}/somewhere?id=${ID}`)), ID);
  });

  test("a foreign origin is refused", async () => {
    const response = await handleJob(get(`/api/jobs/${ID}`, { origin: "https://evil.example" }), env);
    assert.equal(response.status, 403);
    assert.equal(upstream.requests.length, 0);
  });
});
