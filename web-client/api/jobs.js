// Vercel Function (Node.js runtime, Web-standard signature): POST /api/jobs.
//
// Starts an asynchronous analysis: forwards the /analyze-shaped body to
// `${SCARAB_API_URL}/jobs` with the key added server-side and the page's
// Idempotency-Key header passed on (a retried POST then returns the same job), with
// api/analyze.js's rules (origin, limits, timeout, redaction).

import { forward, handleOptions } from "./analyze.js";

/** The handler with its environment passed in (what the tests call). */
export function handleJobs(request, env = process.env) {
  return forward(request, env, {
    method: "POST",
    path: "/jobs",
    route: "jobs",
    forwardHeaders: ["idempotency-key"],
  });
}

export function POST(request) {
  return handleJobs(request, process.env);
}

export function OPTIONS(request) {
  return handleOptions(request, process.env, { allowHeaders: "content-type, idempotency-key" });
}
