// The page's upload/job logic (public/lib/jobs.js): when to upload, when to use a job,
// the poll backoff, and the Idempotency-Key kept across retries of one submission.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import {
  DIRECT_BODY_LIMIT,
  describeJobFailure,
  directBodyBytes,
  needsUpload,
  newSubmission,
  pollDelay,
  pollJob,
  pollSchedule,
  routeMissing,
  startJob,
  usesJob,
} from "../public/lib/jobs.js";
import { describeFailure } from "../public/lib/errors.js";

const ID = "0123456789abcdef0123456789abcdef";
const realFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = realFetch;
});

// The page's fetch, answered by a script (the browser tests run the real network path).
function scriptFetch(replies) {
  const calls = [];
  globalThis.fetch = async (url, init = {}) => {
    calls.push({ url, method: init.method ?? "GET", headers: init.headers ?? {}, body: init.body });
    const next = replies.shift();
    if (!next || next === "network") throw new TypeError("Failed to fetch");
    return new Response(JSON.stringify(next.body ?? {}), {
      status: next.status,
      headers: { "content-type": "application/json", ...(next.headers ?? {}) },
    });
  };
  return calls;
}

describe("when to upload", () => {
  test("the direct body is the base64 of the JPEG plus the JSON around it", () => {
    assert.equal(directBodyBytes(3), 23 + 4 + 200);
    assert.ok(directBodyBytes(1_000_000) < 1_400_000);
  });

  test("a JPEG whose base64 body would pass 4.5 MB is uploaded; smaller ones go inline", () => {
    assert.equal(needsUpload(1_000_000), false); // the fast tiers' budget
    assert.equal(needsUpload(3_000_000), false); // 4.0 MB as base64
    assert.equal(needsUpload(3_400_000), true); // 4.53 MB as base64
    const edge = Math.floor(((DIRECT_BODY_LIMIT - 23 - 200) * 3) / 4);
    assert.equal(needsUpload(edge - 3), false);
    assert.equal(needsUpload(edge + 3), true);
  });
});

describe("when to use a job", () => {
  test("the regular tier always; the fast tiers go direct", () => {
    assert.equal(usesJob("regular"), true);
    assert.equal(usesJob("fast"), false);
    assert.equal(usesJob("super-fast"), false);
  });

  test("a missing route means falling back to a direct request, the API's own 404s do not", () => {
    assert.equal(routeMissing(404, { error: { code: "not_found" } }), true);
    assert.equal(routeMissing(404, null), true);
    assert.equal(routeMissing(403, { message: "Missing Authentication Token" }), true);
    assert.equal(routeMissing(503, { error: { code: "uploads_unavailable" } }), true);
    assert.equal(routeMissing(404, { error: { code: "upload_not_found" } }), false);
    assert.equal(routeMissing(404, { error: { code: "job_not_found" } }), false);
    assert.equal(routeMissing(403, { message: "Forbidden" }), false);
    assert.equal(routeMissing(413, { error: { code: "upload_too_large" } }), false);
  });
});

describe("polling backoff", () => {
  test("1 s, then x1.5 each poll, capped at 5 s", () => {
    assert.deepEqual(pollSchedule(7), [1000, 1500, 2250, 3375, 5000, 5000, 5000]);
    assert.equal(pollDelay(100), 5000);
  });
});

describe("starting a job", () => {
  test("one Idempotency-Key per submission, reused after a network error", async () => {
    const calls = scriptFetch(["network", { status: 202, body: { job_id: ID, status_url: `/jobs/${ID}` } }]);
    const submission = newSubmission({ upload: "uploads/ab", speed: "regular", imageType: "tomb" });
    const started = await startJob(submission, new AbortController().signal);
    assert.deepEqual(started, { ok: true, jobId: ID });
    assert.equal(calls.length, 2);
    assert.match(submission.idempotencyKey, /^[0-9a-f-]{36}$/);
    for (const call of calls) {
      assert.equal(call.url, "/api/jobs");
      assert.equal(call.method, "POST");
      assert.equal(call.headers["idempotency-key"], submission.idempotencyKey);
      assert.deepEqual(JSON.parse(call.body), submission.body);
    }
    assert.notEqual(newSubmission({}).idempotencyKey, submission.idempotencyKey);
  });

  test("a lost upstream (502 from the proxy) is retried with the same key", async () => {
    const calls = scriptFetch([
      { status: 502, body: { error: { code: "upstream_unreachable" } } },
      { status: 202, body: { job_id: ID } },
    ]);
    const started = await startJob(newSubmission({}), new AbortController().signal);
    assert.equal(started.ok, true);
    assert.equal(calls.length, 2);
    assert.equal(calls[0].headers["idempotency-key"], calls[1].headers["idempotency-key"]);
  });

  test("a refusal (403, 413, 422) is not retried", async () => {
    for (const status of [403, 413, 422]) {
      const calls = scriptFetch([{ status, body: { message: "Forbidden" } }]);
      const started = await startJob(newSubmission({}), new AbortController().signal);
      assert.equal(started.ok, false);
      assert.equal(calls.length, 1, String(status));
    }
  });

  test("409 idempotency_in_progress waits Retry-After and asks again with the same key", async () => {
    const calls = scriptFetch([
      { status: 409, body: { error: { code: "idempotency_in_progress" } }, headers: { "retry-after": "0" } },
      { status: 202, body: { job_id: ID } },
    ]);
    const started = await startJob(newSubmission({}), new AbortController().signal);
    assert.equal(started.ok, true);
    assert.equal(calls[0].headers["idempotency-key"], calls[1].headers["idempotency-key"]);
  });

  test("409 idempotency_conflict is an error; 404 from the proxy means no jobs here", async () => {
    scriptFetch([{ status: 409, body: { error: { code: "idempotency_conflict", message: "x" } } }]);
    const conflict = await startJob(newSubmission({}), new AbortController().signal);
    assert.equal(conflict.ok, false);
    assert.equal(conflict.failure.status, 409);
    scriptFetch([{ status: 404, body: { error: { code: "not_found" } } }]);
    assert.deepEqual(await startJob(newSubmission({}), new AbortController().signal), { ok: false, fallback: true });
  });

  test("a job id that is not 32 lowercase hex is not followed", async () => {
    scriptFetch([{ status: 202, body: { job_id: "../../analyze" } }]);
    const started = await startJob(newSubmission({}), new AbortController().signal);
    assert.equal(started.ok, false);
    assert.equal(started.failure.kind, "bad_result");
  });
});

describe("polling a job", () => {
  const fast = { delay: () => 0 };

  test("queued, running, then the result; each status is reported", async () => {
    const result = { analysis: { characters: [] }, model: "m" };
    const calls = scriptFetch([
      { status: 200, body: { status: "queued" } },
      "network", // a lost poll is tried again
      { status: 200, body: { status: "running" } },
      { status: 200, body: { status: "succeeded", result } },
    ]);
    const seen = [];
    const outcome = await pollJob(ID, new AbortController().signal, { ...fast, onStatus: (s) => seen.push(s) });
    assert.equal(outcome.ok, true);
    assert.deepEqual(outcome.data, result);
    assert.deepEqual(seen, ["queued", "running", "succeeded"]);
    assert.ok(calls.every((c) => c.url === `/api/jobs/${ID}` && c.method === "GET"));
  });

  test("a failed job gives its error in words", async () => {
    scriptFetch([{ status: 200, body: { status: "failed", error: { code: "worker_failed", message: "boom" } } }]);
    const outcome = await pollJob(ID, new AbortController().signal, fast);
    assert.equal(outcome.ok, false);
    assert.equal(outcome.failure.kind, "job_failed");
    assert.equal(outcome.failure.detail, "boom");
    assert.match(outcome.failure.message, /tried several times/);
  });

  test("404 job_not_found stops polling", async () => {
    const calls = scriptFetch([{ status: 404, body: { error: { code: "job_not_found" } } }]);
    const outcome = await pollJob(ID, new AbortController().signal, fast);
    assert.equal(outcome.failure.status, 404);
    assert.equal(calls.length, 1);
  });

  test("cancel stops polling at once", async () => {
    const calls = scriptFetch([]);
    const controller = new AbortController();
    const polling = pollJob(ID, controller.signal, { delay: () => 60_000 });
    controller.abort(new DOMException("Cancelled by the user.", "AbortError"));
    await assert.rejects(polling, { name: "AbortError" });
    assert.equal(calls.length, 0);
  });

  test("after five unanswered polls in a row the page gives up", async () => {
    const calls = scriptFetch(["network", "network", "network", "network", "network"]);
    const outcome = await pollJob(ID, new AbortController().signal, fast);
    assert.equal(outcome.failure.kind, "network");
    assert.equal(calls.length, 5);
  });
});

describe("wording", () => {
  test("404/409/413 from the upload and job routes say what happened", () => {
    const f = (status, code) => describeFailure({ status, body: { error: { code, message: "m" } } });
    assert.match(f(404, "upload_not_found").title, /uploaded photo/i);
    assert.match(f(404, "job_not_found").title, /job/);
    assert.match(f(409, "idempotency_conflict").title, /clashed/);
    assert.match(f(409, "idempotency_in_progress").title, /still being started/);
    assert.match(f(413, "upload_too_large").title, /larger than the service accepts/);
    assert.equal(f(415, "unsupported_media_type").kind, "unsupported");
    assert.equal(describeJobFailure({ code: "unsupported_image" }).retry, false);
    assert.equal(describeJobFailure({ code: "anything" }).retry, true);
  });
});
