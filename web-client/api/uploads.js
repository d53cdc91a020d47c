// Vercel Function (Node.js runtime, Web-standard signature): POST /api/uploads.
//
// Asks the API for a presigned S3 upload (`POST ${SCARAB_API_URL}/uploads`, body
// {"content_type", "bytes"}) with the key added server-side, exactly as api/analyze.js
// forwards /analyze (same origin rule, limits, timeout, redaction). The page then POSTs
// the photo straight to the presigned URL: the image bytes never pass through here.

import { forward, handleOptions } from "./analyze.js";

/** The handler with its environment passed in (what the tests call). */
export function handleUploads(request, env = process.env) {
  return forward(request, env, { method: "POST", path: "/uploads", route: "uploads" });
}

export function POST(request) {
  return handleUploads(request, process.env);
}

export function OPTIONS(request) {
  return handleOptions(request, process.env);
}
