// Vercel Function (Node.js runtime, Web-standard signature): GET /api/jobs/{id}.
//
// A job's status: forwards to `${SCARAB_API_URL}/jobs/{id}` with the key added
// server-side (api/analyze.js's rules). Only an id of 32 lowercase hex characters is
// forwarded; anything else is answered here with the API's own 404 job_not_found, so
// no other path can be reached through this route.

import { checkOrigin, errorResponse, forbiddenOrigin, forward, log } from "../analyze.js";

export const JOB_ID = /^[0-9a-f]{32}$/;

/** The id from /api/jobs/<id> (Vercel also offers it as ?id= for the [id] segment). */
export function jobIdOf(request) {
  const url = new URL(request.url);
  const match = url.pathname.match(/\/api\/jobs\/([^/]*)\/?$/);
  const raw = match ? match[1] : (url.searchParams.get("id") ?? "");
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The handler with its environment passed in (what the tests call). */
export async function handleJob(request, env = process.env) {
  const id = jobIdOf(request);
  if (!JOB_ID.test(id)) {
    const origin = checkOrigin(request, env);
    if (!origin.ok) return forbiddenOrigin();
    log({ route: "job", status: 404, reason: "malformed_id" });
    return errorResponse(404, "job_not_found", "There is no job with this id.", origin.cors);
  }
  return forward(request, env, { method: "GET", path: `/jobs/${id}`, route: "job" });
}

export function GET(request) {
  return handleJob(request, process.env);
}
