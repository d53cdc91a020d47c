// A whole local stack for the page's upload and job flows, on node alone:
//
//   front  (one origin, like Vercel + S3 CORS, or like `scarab serve`):
//          public/ and api/*.js through dev-server.mjs's handler (the real proxy code,
//          key added server-side), plus /_s3/<bucket>: a presigned-POST stand-in
//          that checks the form against the grant (fields in order, then the file,
//          Content-Type, size range, expiry) and stores the object
//   api    a scriptable stand-in for the Scarab API behind the proxy (API key
//          required): /analyze (image or upload), /uploads, /jobs (Idempotency-Key),
//          /jobs/<id>, and /_control/{script,log,reset} for the tests
//
// `node test-support/stack.mjs` prints one JSON line {"url", "api", "key"} and serves
// until killed. tests/web/test_page_jobs.py drives chromium against it.

import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";

import { devHandler } from "../dev-server.mjs";

export const KEY = "stack-api-key-never-in-the-browser-5e6f";
const BUCKET = "scarab-test-uploads";
const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;
const UPLOAD_TYPES = new Set(["image/jpeg", "image/png", "image/webp", "image/gif"]);

export const SAMPLE = {
  analysis: {
    picture_location: "Tomb of Nefertari, Valley of the Queens",
    date: "New Kingdom, 19th Dynasty",
    ancient_text_translation: "Words spoken by Osiris.",
    interesting_detail: "The queen wears a vulture headdress.",
    characters: [
      { character_name: "Nefertari", description: "A queen.", location: "left", reasoning: "Her cartouche." },
    ],
  },
  model: "stack-fake-model",
  request_id: "stack-req-1",
};

const json = (res, status, body, headers = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
};
const apiError = (res, status, code, message, headers) =>
  json(res, status, { error: { code, message } }, headers);

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function defaultScript() {
  return {
    analyze: [], // replies for POST /analyze, in turn: {status, body?, delay_ms?}
    job: { queued_polls: 1, running_polls: 1, outcome: "succeeded", error: null },
    routes: { uploads: true, jobs: true },
    drop_jobs: 0, // how many new jobs' 202 answers are lost (connection reset)
  };
}

export function createState() {
  return {
    script: defaultScript(),
    log: [], // every API request: {method, path, has_key, idempotency_key, body (summary)}
    grants: new Map(), // key -> {fields, content_type, expires}
    objects: new Map(), // key -> {bytes, content_type}
    uploads: [], // every form POSTed to /_s3: {status, key, bytes, field_order}
    jobs: new Map(), // id -> {id, body, polls, plan, created_at}
    idempotency: new Map(), // key -> {hash, id}
  };
}

// What the tests may read about a body: its fields, with the image's size only.
function summary(body) {
  if (!body || typeof body !== "object") return body;
  const out = { ...body };
  if (typeof out.image === "string") out.image = { chars: out.image.length };
  return out;
}

function jobStatus(job) {
  const { queued_polls: q, running_polls: r, outcome, error } = job.plan;
  if (job.polls <= q) return { status: "queued" };
  if (job.polls <= q + r) return { status: "running" };
  if (outcome === "failed") return { status: "failed", error: error ?? { code: "worker_failed", message: "The worker failed." } };
  return { status: "succeeded", result: { ...SAMPLE, request_id: `job-${job.id.slice(0, 8)}` } };
}

/** The API stand-in's request handler (behind the proxy, API key required). */
export function apiHandler(state, publicUrl) {
  return async (req, res) => {
    const url = new URL(req.url, "http://x");
    const raw = await readBody(req);
    if (url.pathname.startsWith("/_control/")) return control(state, url.pathname, raw, res);
    const path = url.pathname.replace(/^\/default/, "");
    let body = null;
    try {
      body = raw.length ? JSON.parse(raw.toString()) : null;
    } catch {
      body = undefined;
    }
    state.log.push({
      method: req.method,
      path,
      has_key: req.headers["x-api-key"] === KEY,
      idempotency_key: req.headers["idempotency-key"] ?? null,
      body: summary(body),
      bytes: raw.length,
    });
    if (req.headers["x-api-key"] !== KEY) return json(res, 403, { message: "Forbidden" });
    if (body === undefined) return apiError(res, 400, "invalid_json", "The body is not JSON.");

    if (req.method === "POST" && path === "/uploads") {
      if (!state.script.routes.uploads) return json(res, 403, { message: "Missing Authentication Token" });
      const type = body?.content_type;
      const bytes = body?.bytes;
      if (!Number.isInteger(bytes) || bytes < 1) return apiError(res, 422, "invalid_request", "bytes must be a positive integer.");
      if (!UPLOAD_TYPES.has(type)) return apiError(res, 415, "unsupported_media_type", "Not an image type.");
      if (bytes > MAX_UPLOAD_BYTES) return apiError(res, 413, "upload_too_large", `Over ${MAX_UPLOAD_BYTES} bytes.`);
      const key = `uploads/${randomBytes(16).toString("hex")}`;
      const expires = Date.now() + 300_000;
      const policy = Buffer.from(JSON.stringify({ expiration: new Date(expires).toISOString(), key })).toString("base64");
      const fields = {
        key,
        "Content-Type": type,
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": "testing/20260101/us-east-1/s3/aws4_request",
        "x-amz-date": "20260101T000000Z",
        policy,
        "x-amz-signature": createHash("sha256").update(policy).digest("hex"),
      };
      state.grants.set(key, { fields, content_type: type, expires });
      return json(res, 201, {
        upload: { url: `${publicUrl()}/_s3/${BUCKET}`, fields, key, expires_at: new Date(expires).toISOString(), max_bytes: MAX_UPLOAD_BYTES },
      });
    }

    if (req.method === "POST" && (path === "/analyze" || path === "/jobs")) {
      const hasImage = typeof body?.image === "string";
      const hasUpload = typeof body?.upload === "string";
      if (hasImage === hasUpload) return apiError(res, 422, "invalid_request", "Send exactly one of image and upload.");
      if (hasUpload && !state.objects.has(body.upload)) return apiError(res, 404, "upload_not_found", "No such upload.");
      if (path === "/analyze") {
        const next = state.script.analyze.shift() ?? { status: 200 };
        const answer = () => {
          if (hasUpload && next.status < 500) state.objects.delete(body.upload);
          json(res, next.status, next.body ?? (next.status === 200 ? SAMPLE : { message: "Endpoint request timed out" }));
        };
        if (next.delay_ms) setTimeout(answer, next.delay_ms);
        else answer();
        return;
      }
      if (!state.script.routes.jobs) return json(res, 403, { message: "Missing Authentication Token" });
      const idem = req.headers["idempotency-key"];
      const hash = createHash("sha256").update(raw).digest("hex");
      if (idem && state.idempotency.has(idem)) {
        const seen = state.idempotency.get(idem);
        if (seen.hash !== hash) return apiError(res, 409, "idempotency_conflict", "Same key, different body.");
        return json(res, 202, { job_id: seen.id, status_url: `/jobs/${seen.id}` });
      }
      const id = randomBytes(16).toString("hex");
      const now = new Date().toISOString();
      state.jobs.set(id, { id, body: summary(body), polls: 0, plan: { ...state.script.job }, created_at: now });
      if (idem) state.idempotency.set(idem, { hash, id });
      if (hasUpload) state.objects.delete(body.upload); // the job holds it now
      if (state.script.drop_jobs > 0) {
        // The job exists, but its answer is lost on the way (the proxy sees a reset).
        state.script.drop_jobs -= 1;
        res.socket?.destroy();
        return;
      }
      return json(res, 202, { job_id: id, status_url: `/jobs/${id}` });
    }

    const jobPath = path.match(/^\/jobs\/([^/]+)$/);
    if (req.method === "GET" && jobPath) {
      const job = state.jobs.get(jobPath[1]);
      if (!job) return apiError(res, 404, "job_not_found", "No such job.");
      job.polls += 1;
      const now = new Date().toISOString();
      return json(res, 200, { ...jobStatus(job), timings_ms: { queued: 5 }, created_at: job.created_at, updated_at: now });
    }
    return json(res, 403, { message: "Missing Authentication Token" });
  };
}

function control(state, path, raw, res) {
  if (path === "/_control/reset") {
    Object.assign(state, createState());
    return json(res, 200, { ok: true });
  }
  if (path === "/_control/script") {
    const patch = raw.length ? JSON.parse(raw.toString()) : {};
    if (patch.analyze) state.script.analyze = patch.analyze;
    if (patch.job) state.script.job = { ...state.script.job, ...patch.job };
    if (patch.routes) state.script.routes = { ...state.script.routes, ...patch.routes };
    if (Number.isInteger(patch.drop_jobs)) state.script.drop_jobs = patch.drop_jobs;
    return json(res, 200, state.script);
  }
  if (path === "/_control/log") {
    return json(res, 200, {
      requests: state.log,
      uploads: state.uploads,
      objects: [...state.objects.keys()],
      jobs: [...state.jobs.values()].map(({ id, body, polls }) => ({ id, body, polls })),
    });
  }
  return json(res, 404, { error: { code: "not_found", message: "No such control." } });
}

const s3Error = (res, status, code) => {
  res.writeHead(status, { "content-type": "application/xml" });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code></Error>`);
};

/** POST /_s3/<bucket>: what S3 checks of a presigned POST form, against the grant. */
export async function s3Post(state, req, res) {
  const request = new Request(new URL(req.url, "http://x"), {
    method: "POST",
    headers: req.headers,
    body: Readable.toWeb(req),
    duplex: "half",
  });
  let form;
  try {
    form = await request.formData();
  } catch {
    return s3Error(res, 400, "MalformedPOSTRequest");
  }
  const names = [...form.keys()];
  const record = { status: 0, key: form.get("key"), bytes: 0, field_order: names };
  state.uploads.push(record);
  const grant = state.grants.get(form.get("key"));
  const file = form.get("file");
  const fail = (status, code) => {
    record.status = status;
    s3Error(res, status, code);
  };
  if (!grant) return fail(403, "AccessDenied");
  if (names[names.length - 1] !== "file" || !(file instanceof Blob)) return fail(400, "InvalidArgument");
  const expected = Object.keys(grant.fields);
  if (names.slice(0, -1).join(",") !== expected.join(",")) return fail(403, "AccessDenied");
  for (const name of expected) if (form.get(name) !== grant.fields[name]) return fail(403, "AccessDenied");
  if (Date.now() > grant.expires) return fail(403, "AccessDenied");
  if (file.size < 1 || file.size > MAX_UPLOAD_BYTES) return fail(400, "EntityTooLarge");
  state.grants.delete(record.key);
  state.objects.set(record.key, { bytes: file.size, content_type: grant.content_type });
  record.status = 204;
  record.bytes = file.size;
  res.writeHead(204).end();
}

/** Start both servers on free ports; resolves {url, api, state, close}. */
export async function startStack() {
  const state = createState();
  let frontUrl = "";
  const api = http.createServer((req, res) => {
    apiHandler(state, () => frontUrl)(req, res).catch(() => {
      if (!res.headersSent) apiError(res, 500, "internal", "Stack error.");
    });
  });
  await new Promise((resolve) => api.listen(0, "127.0.0.1", resolve));
  const apiUrl = `http://127.0.0.1:${api.address().port}`;
  const env = { SCARAB_API_URL: `${apiUrl}/default`, SCARAB_API_KEY: KEY, SCARAB_PROXY_TIMEOUT_MS: "30000" };
  const web = devHandler(env);
  const front = http.createServer((req, res) => {
    if (req.method === "POST" && req.url.startsWith(`/_s3/${BUCKET}`)) {
      s3Post(state, req, res).catch(() => {
        if (!res.headersSent) s3Error(res, 500, "InternalError");
      });
    } else if (req.url === "/api/models") {
      json(res, 200, { models: [] }); // serve's route (the digit pad); none here
    } else {
      web(req, res);
    }
  });
  await new Promise((resolve) => front.listen(0, "127.0.0.1", resolve));
  frontUrl = `http://127.0.0.1:${front.address().port}`;
  const close = () =>
    Promise.all(
      [api, front].map(
        (server) =>
          new Promise((resolve) => {
            server.closeAllConnections();
            server.close(resolve);
          }),
      ),
    );
  return { url: frontUrl, api: apiUrl, state, close };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const stack = await startStack();
  console.log(JSON.stringify({ url: stack.url, api: stack.api, key: KEY }));
  const stop = () => stack.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
