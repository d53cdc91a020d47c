// The page's only network call: POST /api/analyze on its own origin. The server side
// (the Vercel function, or `scarab serve` locally) adds the API key; the page has none.

import { describeBadResult, describeFailure, describeNetworkFailure } from "./errors.js";

export const ENDPOINT = "/api/analyze";

function looksLikeAnalysis(data) {
  const a = data && typeof data === "object" ? data.analysis : null;
  return Boolean(a && typeof a === "object" && Array.isArray(a.characters ?? []));
}

/**
 * @param {{image: string, speed: string, imageType: string}} request
 * @param {AbortSignal} signal aborting it rejects with the signal's reason
 * @returns {Promise<{ok: true, data: object} | {ok: false, failure: object}>}
 */
export async function analyze(request, signal) {
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
      signal,
      credentials: "same-origin",
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason ?? err;
    return { ok: false, failure: describeNetworkFailure() };
  }
  let body = null;
  try {
    const text = await response.text();
    body = text ? JSON.parse(text) : null;
  } catch (err) {
    if (signal.aborted) throw signal.reason ?? err;
    body = null; // not JSON: an HTML error page, a truncated answer...
  }
  if (!response.ok) {
    return {
      ok: false,
      failure: describeFailure({
        status: response.status,
        body,
        retryAfter: response.headers.get("retry-after"),
      }),
    };
  }
  if (!looksLikeAnalysis(body)) return { ok: false, failure: describeBadResult() };
  return { ok: true, data: body };
}
