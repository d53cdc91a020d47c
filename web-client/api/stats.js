// Vercel Function (Node.js runtime, Web-standard signature): GET /api/stats.
//
// The dashboard's data: forwards to `${SCARAB_API_URL}/stats` with the `x-api-key`
// header from server-side environment variables (as api/analyze.js does, with the same
// origin rule, timeout, size limit and redaction), passing on only the `since` query
// parameter. Status codes and error bodies pass through unchanged.

import {
  checkOrigin,
  errorResponse,
  forbiddenOrigin,
  log,
  PASSED_HEADERS,
  readResponse,
  timeoutMs,
  TooLarge,
} from "./analyze.js";

/** The handler with its environment passed in (what the tests call). */
export async function handleStats(request, env = process.env) {
  const started = Date.now();
  const origin = checkOrigin(request, env);
  if (!origin.ok) {
    log({ route: "stats", status: 403, reason: "origin_not_allowed" });
    return forbiddenOrigin();
  }
  const apiUrl = (env.SCARAB_API_URL ?? "").trim().replace(/\/+$/, "");
  const apiKey = (env.SCARAB_API_KEY ?? "").trim();
  if (!apiUrl || !apiKey) {
    log({ route: "stats", status: 500, reason: "proxy_not_configured" });
    return errorResponse(
      500,
      "proxy_not_configured",
      "The proxy is missing SCARAB_API_URL or SCARAB_API_KEY in its environment.",
      origin.cors,
    );
  }
  const since = new URL(request.url).searchParams.get("since");
  const query = since === null ? "" : `?${new URLSearchParams({ since })}`;
  const signal = AbortSignal.timeout(timeoutMs(env.SCARAB_PROXY_TIMEOUT_MS));
  let upstream;
  let text;
  try {
    upstream = await fetch(`${apiUrl}/stats${query}`, {
      method: "GET",
      headers: { accept: "application/json", "x-api-key": apiKey },
      signal,
      redirect: "manual", // never carry the key to whatever host a Location names
    });
    if (upstream.type === "opaqueredirect" || (upstream.status >= 300 && upstream.status < 400)) {
      await upstream.body?.cancel().catch(() => {});
      log({ route: "stats", status: 502, reason: "redirected", ms: Date.now() - started });
      return errorResponse(
        502,
        "upstream_unreachable",
        `The API answered with a redirect (${upstream.status}), which the proxy does not follow; check SCARAB_API_URL.`,
        origin.cors,
      );
    }
    text = await readResponse(upstream);
  } catch (err) {
    if (err instanceof TooLarge) {
      log({ route: "stats", status: 502, reason: "answer_too_large", ms: Date.now() - started });
      return errorResponse(502, "upstream_unreachable", "The API's answer is too large.", origin.cors);
    }
    const timedOut = err?.name === "TimeoutError" || signal.aborted;
    log({ route: "stats", status: timedOut ? 504 : 502, ms: Date.now() - started });
    return timedOut
      ? errorResponse(504, "upstream_timeout", "The API did not answer in time.", origin.cors)
      : errorResponse(502, "upstream_unreachable", "The API could not be reached.", origin.cors);
  }
  if (text.includes(apiKey)) text = text.split(apiKey).join("[redacted]");
  const headers = { "cache-control": "no-store", ...origin.cors };
  for (const name of PASSED_HEADERS) {
    const value = upstream.headers.get(name);
    if (value) headers[name] = value;
  }
  log({ route: "stats", status: upstream.status, ms: Date.now() - started });
  return new Response(text, { status: upstream.status, headers });
}

export function GET(request) {
  return handleStats(request, process.env);
}
