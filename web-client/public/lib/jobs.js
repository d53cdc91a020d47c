// Large photos and long analyses: presigned uploads and asynchronous jobs.
//
// A direct POST /api/analyze carries the photo as base64 inside JSON, and Vercel stops
// request bodies at 4.5 MB, so a bigger photo is first uploaded straight to S3: the
// page asks /api/uploads for a presigned POST and sends the form to its URL (the bytes
// never pass through the proxy), then sends {"upload": key} in place of "image".
// The `regular` tier (and any direct request that timed out with 504) runs as a job:
// POST /api/jobs answers 202 at once, then GET /api/jobs/<id> is polled with backoff.
// Everything here is plain functions; app.js wires them to the page.

import { describeBadResult, describeFailure, describeNetworkFailure, parseRetryAfter } from "./errors.js";

export const DIRECT_BODY_LIMIT = 4_500_000; // Vercel's request body limit (the proxy's too)
const DATA_URL_PREFIX = "data:image/jpeg;base64,".length;
const JSON_OVERHEAD = 200; // {"image": "...", "speed": "super-fast", "imageType": "unknown"}
export const UPLOAD_CONTENT_TYPE = "image/jpeg"; // the page always re-encodes as JPEG

export const POLL_FIRST_MS = 1000;
export const POLL_FACTOR = 1.5;
export const POLL_MAX_MS = 5000;
export const POLL_TIMEOUT_MS = 10_000; // each GET /api/jobs/<id> on its own
export const MAX_POLL_FAILURES = 5; // consecutive unanswered polls before giving up
export const MAX_JOB_WAIT_MS = 15 * 60_000; // Lambda's longest run
export const START_ATTEMPTS = 4; // POST /api/jobs tries (same Idempotency-Key)
export const UPLOAD_TIMEOUT_MS = 300_000; // the presigned POST expires after 5 minutes
const JOB_ID = /^[0-9a-f]{32}$/;

/** Bytes of the JSON body a direct request with this JPEG inline would have. */
export function directBodyBytes(jpegBytes) {
  return DATA_URL_PREFIX + 4 * Math.ceil(jpegBytes / 3) + JSON_OVERHEAD;
}

/** True when a JPEG of this size would not fit a direct request. */
export function needsUpload(jpegBytes, limit = DIRECT_BODY_LIMIT) {
  return directBodyBytes(jpegBytes) > limit;
}

/** The regular tier runs as a job (its analyses can outlast API Gateway's 29 s). */
export function usesJob(speed) {
  return speed === "regular";
}

/** Milliseconds to wait before poll number `n` (0-based): 1 s, x1.5 each time, at most 5 s. */
export function pollDelay(n) {
  return Math.min(POLL_MAX_MS, Math.round(POLL_FIRST_MS * POLL_FACTOR ** Math.max(0, n)));
}

/** The first `count` poll delays (for tests and for the curious). */
export function pollSchedule(count) {
  return Array.from({ length: count }, (_, n) => pollDelay(n));
}

/**
 * Does a failure from /api/uploads or /api/jobs mean "this API has no such route"
 * (an older deployment), so the page should fall back to a direct request? A 404
 * without the API's own codes, API Gateway's 403 "Missing Authentication Token",
 * a 405, or uploads switched off (503 uploads_unavailable).
 */
export function routeMissing(status, body) {
  const code = body?.error?.code ?? "";
  if (status === 404) return code !== "upload_not_found" && code !== "job_not_found";
  if (status === 405 || status === 501) return true;
  if (status === 403) return String(body?.message ?? "").toLowerCase().includes("missing authentication token");
  return status === 503 && code === "uploads_unavailable";
}

/** Abort signal for one request: the caller's signal, or `ms` running out (TimeoutError). */
export function withTimeout(signal, ms) {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException("The request took too long.", "TimeoutError")),
    ms,
  );
  const stop = () => controller.abort(signal.reason);
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  return {
    signal: controller.signal,
    done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", stop);
    },
  };
}

/** Wait `ms`, or reject with the signal's reason when it aborts first. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

async function readJson(response) {
  try {
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/**
 * One JSON request. Resolves {status, body, retryAfter} for any HTTP answer, or
 * {status: 0} when there was none (offline, reset) or this request's own timeout ran
 * out; rejects only when `signal` (the user's cancel) aborts.
 */
export async function requestJson(url, { method = "GET", body, headers = {}, signal, timeoutMs }) {
  const limit = withTimeout(signal, timeoutMs);
  try {
    const response = await fetch(url, {
      method,
      headers: body === undefined ? { accept: "application/json", ...headers } : { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: limit.signal,
      credentials: "same-origin",
    });
    const data = await readJson(response);
    if (signal.aborted) throw signal.reason;
    return { status: response.status, body: data, retryAfter: response.headers.get("retry-after") };
  } catch (err) {
    if (signal.aborted) throw signal.reason ?? err;
    return { status: 0, body: null, retryAfter: null, timedOut: limit.signal.aborted };
  } finally {
    limit.done();
  }
}

function failureOf(answer) {
  if (answer.status === 0) {
    return answer.timedOut ? describeFailure({ status: 504, body: null }) : describeNetworkFailure();
  }
  return describeFailure({ status: answer.status, body: answer.body, retryAfter: answer.retryAfter });
}

/**
 * Ask for a presigned upload and send the photo to it.
 * @returns {Promise<{ok: true, key: string} | {ok: false, fallback: true} | {ok: false, failure: object}>}
 */
export async function uploadPhoto(blob, signal, { fetchTimeoutMs = 30_000 } = {}) {
  const grant = await requestJson("/api/uploads", {
    method: "POST",
    body: { content_type: UPLOAD_CONTENT_TYPE, bytes: blob.size },
    signal,
    timeoutMs: fetchTimeoutMs,
  });
  if (grant.status !== 201) {
    if (routeMissing(grant.status, grant.body)) return { ok: false, fallback: true };
    return { ok: false, failure: failureOf(grant) };
  }
  const upload = grant.body?.upload;
  if (!upload || typeof upload.url !== "string" || typeof upload.key !== "string") {
    return { ok: false, failure: describeBadResult() };
  }
  // The policy's fields first, in the order given, then the file (S3 ignores fields after it).
  const form = new FormData();
  for (const [name, value] of Object.entries(upload.fields ?? {})) form.append(name, String(value));
  form.append("file", blob, "photo.jpg");
  const limit = withTimeout(signal, UPLOAD_TIMEOUT_MS);
  let response;
  try {
    // No credentials: the presigned form is the whole authorisation.
    response = await fetch(upload.url, { method: "POST", body: form, signal: limit.signal, credentials: "omit" });
    await response.arrayBuffer().catch(() => null);
  } catch (err) {
    if (signal.aborted) throw signal.reason ?? err;
    return {
      ok: false,
      failure: limit.signal.aborted ? describeUploadFailure(408) : describeNetworkFailure(),
    };
  } finally {
    limit.done();
  }
  if (signal.aborted) throw signal.reason;
  if (response.status < 200 || response.status >= 300) {
    return { ok: false, failure: describeUploadFailure(response.status) };
  }
  return { ok: true, key: upload.key };
}

/** The storage service refused the form (S3 answers XML, not the API's JSON). */
export function describeUploadFailure(status) {
  const base = { detail: "", retryAfterSeconds: null, status };
  if (status === 413 || status === 400) {
    return {
      ...base,
      kind: "upload_refused",
      title: "The photo couldn't be uploaded",
      message: "The storage service refused the photo (too large, or not what was announced). Try a smaller photo.",
      retry: false,
    };
  }
  if (status === 408) {
    return {
      ...base,
      kind: "upload_timeout",
      title: "The upload took too long",
      message: "Sending the photo didn't finish in time. Check your connection and try again.",
      retry: true,
    };
  }
  return {
    ...base,
    kind: "upload_refused",
    title: "The photo couldn't be uploaded",
    message: "The storage service refused the upload (its permission may have expired). Try again.",
    retry: true,
  };
}

/** A job that ended `failed`: its {code, message} in words for people. */
export function describeJobFailure(error) {
  const code = typeof error?.code === "string" ? error.code : "";
  const detail = typeof error?.message === "string" ? error.message : "";
  const out = (title, message, retry) => ({
    kind: "job_failed",
    code,
    title,
    message,
    detail,
    retry,
    retryAfterSeconds: null,
    status: 200,
  });
  switch (code) {
    case "upload_not_found":
      return out(
        "The uploaded photo was gone",
        "The photo had expired or was already used before the analysis started. Send it again.",
        true,
      );
    case "unsupported_image":
    case "unsupported_media_type":
    case "invalid_image":
      return out("The service couldn't use this image", "Send a photo in JPEG, PNG or WebP format.", false);
    case "upload_too_large":
    case "payload_too_large":
      return out("This image is too large", "Try a smaller or cropped image.", false);
    case "gemini_not_configured":
      return out(
        "Photo analysis isn't switched on here",
        "This server has no key for the image model yet, so it can't analyse photos.",
        false,
      );
    case "worker_failed":
      return out(
        "The analysis failed on the server",
        "The analysis was tried several times and kept failing. Try again later, perhaps with a faster speed setting.",
        true,
      );
    default:
      return out(
        "The analysis couldn't be completed",
        "The service accepted the photo but the analysis failed. Trying again may work.",
        true,
      );
  }
}

/** A new submission: one Idempotency-Key for all its POST /api/jobs attempts. */
export function newSubmission(body) {
  return { body, idempotencyKey: crypto.randomUUID() };
}

// Answers after which the same submission is sent again: no answer, the proxy losing
// the API (502/504), a busy service (503), or the first attempt still in progress
// (409). The Idempotency-Key makes that safe: a job the API did start is returned.
function retriable(answer) {
  const code = answer.body?.error?.code;
  if (answer.status === 409) return code === "idempotency_in_progress";
  if (answer.status === 503) return code !== "uploads_unavailable" && code !== "gemini_not_configured";
  return answer.status === 0 || answer.status === 502 || answer.status === 504;
}

/**
 * Start a job, retrying the same submission (same Idempotency-Key, so the API returns
 * the same job) after a network error, a lost upstream, or while the first attempt is
 * in progress (409).
 * @returns {Promise<{ok: true, jobId: string} | {ok: false, fallback: true} | {ok: false, failure: object}>}
 */
export async function startJob(submission, signal, { timeoutMs = 30_000 } = {}) {
  let answer;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    if (attempt > 0) {
      const hinted = parseRetryAfter(answer.retryAfter);
      await sleep(hinted !== null ? Math.min(hinted, 5) * 1000 : pollDelay(attempt - 1), signal);
    }
    answer = await requestJson("/api/jobs", {
      method: "POST",
      body: submission.body,
      headers: { "idempotency-key": submission.idempotencyKey },
      signal,
      timeoutMs,
    });
    if (!retriable(answer)) break;
  }
  if (answer.status === 202 || answer.status === 200) {
    const jobId = answer.body?.job_id;
    if (typeof jobId !== "string" || !JOB_ID.test(jobId)) return { ok: false, failure: describeBadResult() };
    return { ok: true, jobId };
  }
  if (routeMissing(answer.status, answer.body)) return { ok: false, fallback: true };
  return { ok: false, failure: failureOf(answer) };
}

/**
 * Poll GET /api/jobs/<id> until it succeeds or fails; `onStatus(status, body)` sees
 * every answer (queued, running). A poll that gets no answer is tried again; after
 * MAX_POLL_FAILURES in a row the page says the server can't be reached.
 * @returns {Promise<{ok: true, data: object, job: object} | {ok: false, failure: object}>}
 */
export async function pollJob(jobId, signal, { onStatus = () => {}, now = () => Date.now(), delay = pollDelay } = {}) {
  const started = now();
  let failures = 0;
  for (let n = 0; ; n++) {
    await sleep(delay(n), signal);
    const answer = await requestJson(`/api/jobs/${jobId}`, { signal, timeoutMs: POLL_TIMEOUT_MS });
    if (answer.status === 200 && answer.body && typeof answer.body.status === "string") {
      failures = 0;
      const job = answer.body;
      onStatus(job.status, job);
      if (job.status === "succeeded") {
        const a = job.result?.analysis;
        if (!a || typeof a !== "object") return { ok: false, failure: describeBadResult() };
        return { ok: true, data: job.result, job };
      }
      if (job.status === "failed") return { ok: false, failure: describeJobFailure(job.error) };
    } else if (answer.status === 0 || answer.status >= 500 || answer.status === 429) {
      // A lost or throttled poll says nothing about the job: keep waiting.
      if (++failures >= MAX_POLL_FAILURES) return { ok: false, failure: failureOf(answer) };
    } else {
      return { ok: false, failure: failureOf(answer) };
    }
    if (now() - started > MAX_JOB_WAIT_MS) {
      return {
        ok: false,
        failure: {
          kind: "job_slow",
          title: "The analysis is taking very long",
          message: "The job hasn't finished after 15 minutes, so this page stopped waiting. Try again later.",
          detail: "",
          retry: true,
          retryAfterSeconds: null,
          status: 0,
        },
      };
    }
  }
}
