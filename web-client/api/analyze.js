// Vercel Function (Node.js runtime, Web-standard signature): POST /api/analyze.
//
// Forwards the page's JSON body to `${SCARAB_API_URL}/analyze` with the `x-api-key`
// header taken from server-side environment variables, so the key never reaches the
// browser. Status codes and error bodies pass through unchanged; the proxy answers
// by itself only for its own rules (size limit, origin, configuration, upstream
// unreachable or too slow), always as {"error": {"code", "message"}}.
//
// Environment (Vercel project settings, never NEXT_PUBLIC_*):
//   SCARAB_API_URL     stage base URL, e.g. https://abc123.execute-api.us-east-1.amazonaws.com/default
//   SCARAB_API_KEY     the API Gateway key
//   ALLOWED_ORIGINS    optional comma list of extra origins allowed to call cross-origin
//   SCARAB_PROXY_TIMEOUT_MS  optional upstream timeout in whole milliseconds, 1..2^31-1
//                      (default 30000; API Gateway stops at 29 s)

export const MAX_BODY_BYTES = 4_500_000; // Vercel's request body limit is 4.5 MB
// The API's answers are JSON of a few KB; anything this large is not one of them.
export const MAX_RESPONSE_BYTES = 10_000_000;
export const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_TIMEOUT_MS = 2 ** 31 - 1; // setTimeout's (and AbortSignal.timeout's) limit
export const PASSED_HEADERS = ["content-type", "retry-after", "x-amzn-requestid", "x-amzn-errortype"];

export function errorResponse(status, code, message, headers = {}) {
  return new Response(JSON.stringify({ error: { code, message } }), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}

/** The timeout to use: SCARAB_PROXY_TIMEOUT_MS when it is an integer in 1..2^31-1. */
export function timeoutMs(value) {
  const text = String(value ?? "").trim();
  if (!/^[0-9]+$/.test(text)) return DEFAULT_TIMEOUT_MS;
  const ms = Number(text);
  return ms >= 1 && ms <= MAX_TIMEOUT_MS ? ms : DEFAULT_TIMEOUT_MS;
}

// An origin in its serialized form (scheme://host[:port], lower case, no default port,
// no path), or null when the text is not a URL with a host.
function normalOrigin(text) {
  try {
    const url = new URL(text);
    return url.host ? url.origin.toLowerCase() : null;
  } catch {
    return null;
  }
}

function parseOrigins(value) {
  return new Set(
    (value ?? "")
      .split(",")
      .map((o) => normalOrigin(o.trim()))
      .filter(Boolean),
  );
}

// A browser always sends Origin on a cross-origin request and on same-origin POSTs;
// requests without one (curl, server-to-server) are not a browser calling from a
// foreign page, so the origin rule does not apply to them.
export function checkOrigin(request, env) {
  const origin = request.headers.get("origin");
  if (!origin) return { ok: true, cors: {} };
  const normal = normalOrigin(origin);
  if (normal === null) return { ok: false };
  // An origin is scheme + host + port (http://host is not the https://host page), and
  // this function's own is the one it was reached at: the request URL, which the
  // platform builds, not a Host header a non-browser client may set to anything.
  if (normal === normalOrigin(request.url)) return { ok: true, cors: {} };
  if (parseOrigins(env.ALLOWED_ORIGINS).has(normal)) {
    return { ok: true, cors: { "access-control-allow-origin": origin, vary: "Origin" } };
  }
  return { ok: false };
}

export const forbiddenOrigin = () =>
  errorResponse(403, "origin_not_allowed", "This page's origin is not allowed to use this API.");


// Read the body, stopping as soon as it exceeds the limit (chunked uploads too).
async function readLimited(request) {
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) return null;
  if (!request.body) return new Uint8Array();
  const chunks = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

export class TooLarge extends Error {}

// The upstream's answer as text, or TooLarge past MAX_RESPONSE_BYTES (read no further).
export async function readResponse(response) {
  const declared = Number(response.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > MAX_RESPONSE_BYTES) {
    await response.body?.cancel().catch(() => {});
    throw new TooLarge();
  }
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let total = 0;
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_RESPONSE_BYTES) {
      await reader.cancel().catch(() => {});
      throw new TooLarge();
    }
    text += decoder.decode(value, { stream: true });
  }
  return text + decoder.decode();
}

export function log(fields) {
  // One line per request; never headers, bodies or the key.
  console.log(JSON.stringify({ source: "scarab-proxy", ...fields }));
}

/** SCARAB_API_URL (no trailing slash) and SCARAB_API_KEY, or null when either is unset. */
export function upstreamConfig(env) {
  const apiUrl = (env.SCARAB_API_URL ?? "").trim().replace(/\/+$/, "");
  const apiKey = (env.SCARAB_API_KEY ?? "").trim();
  return apiUrl && apiKey ? { apiUrl, apiKey } : null;
}

export const notConfigured = (cors) =>
  errorResponse(
    500,
    "proxy_not_configured",
    "The proxy is missing SCARAB_API_URL or SCARAB_API_KEY in its environment.",
    cors,
  );

// An Idempotency-Key the proxy passes on: visible ASCII, at most 255 characters
// (a UUID is 36); anything else is refused here rather than forwarded.
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * The proxy's common path: origin rule, configuration, body limit, one deadline,
 * redirects refused, status/body/headers passed through, the key redacted.
 * `options`: {method, path (the stage path, e.g. "/analyze"), route (for logs),
 * forwardHeaders (request header names passed on besides content-type)}.
 */
export async function forward(request, env, { method, path, route, forwardHeaders = [] }) {
  const started = Date.now();
  const tag = route ? { route } : {};
  const origin = checkOrigin(request, env);
  if (!origin.ok) {
    log({ ...tag, status: 403, reason: "origin_not_allowed" });
    return forbiddenOrigin();
  }
  const config = upstreamConfig(env);
  if (!config) {
    log({ ...tag, status: 500, reason: "proxy_not_configured" });
    return notConfigured(origin.cors);
  }
  const { apiUrl, apiKey } = config;
  const headers = { "x-api-key": apiKey };
  let body;
  if (method === "POST") {
    body = await readLimited(request);
    if (body === null) {
      log({ ...tag, status: 413, reason: "payload_too_large" });
      return errorResponse(
        413,
        "payload_too_large",
        `The request is larger than ${MAX_BODY_BYTES} bytes; send a smaller image.`,
        origin.cors,
      );
    }
    headers["content-type"] = request.headers.get("content-type") ?? "application/json";
  } else {
    headers.accept = "application/json";
  }
  for (const name of forwardHeaders) {
    const value = request.headers.get(name);
    if (value === null) continue;
    if (name === "idempotency-key" && !IDEMPOTENCY_KEY.test(value)) {
      log({ ...tag, status: 422, reason: "invalid_idempotency_key" });
      return errorResponse(
        422,
        "invalid_idempotency_key",
        "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
        origin.cors,
      );
    }
    headers[name] = value;
  }

  // One deadline for the whole exchange: a server that sends its headers and then
  // stalls or resets mid-body is as much a failure as one that never answers.
  const signal = AbortSignal.timeout(timeoutMs(env.SCARAB_PROXY_TIMEOUT_MS));
  let upstream;
  let text;
  try {
    upstream = await fetch(`${apiUrl}${path}`, {
      method,
      headers,
      body,
      signal,
      // Never follow: fetch would carry x-api-key to whatever host a Location names.
      redirect: "manual",
    });
    if (upstream.type === "opaqueredirect" || (upstream.status >= 300 && upstream.status < 400)) {
      await upstream.body?.cancel().catch(() => {});
      log({ ...tag, status: 502, reason: "redirected", upstream_status: upstream.status, ms: Date.now() - started });
      return errorResponse(
        502,
        "upstream_unreachable",
        `The analysis API answered with a redirect (${upstream.status}), which the proxy does not follow; check SCARAB_API_URL.`,
        origin.cors,
      );
    }
    text = await readResponse(upstream);
  } catch (err) {
    if (err instanceof TooLarge) {
      log({ ...tag, status: 502, reason: "answer_too_large", ms: Date.now() - started });
      return errorResponse(
        502,
        "upstream_unreachable",
        `The analysis API's answer is larger than ${MAX_RESPONSE_BYTES} bytes; the proxy did not pass it on.`,
        origin.cors,
      );
    }
    const timedOut = err?.name === "TimeoutError" || signal.aborted;
    const reason = timedOut ? "timeout" : upstream ? "answer_cut_off" : "unreachable";
    log({ ...tag, status: timedOut ? 504 : 502, reason, ms: Date.now() - started });
    return timedOut
      ? errorResponse(504, "upstream_timeout", "The analysis API did not answer in time.", origin.cors)
      : errorResponse(
          502,
          "upstream_unreachable",
          upstream
            ? "The analysis API broke off its answer."
            : "The analysis API could not be reached.",
          origin.cors,
        );
  }

  // Defence in depth: whatever the upstream says, the key never goes back out.
  if (text.includes(apiKey)) text = text.split(apiKey).join("[redacted]");
  const out = { "cache-control": "no-store", ...origin.cors };
  for (const name of PASSED_HEADERS) {
    const value = upstream.headers.get(name);
    if (value) out[name] = value;
  }
  log({ ...tag, status: upstream.status, ms: Date.now() - started, bytes_in: body?.byteLength ?? 0 });
  return new Response(text, { status: upstream.status, headers: out });
}

/** The handler with its environment passed in (what the tests call). */
export function handleAnalyze(request, env = process.env) {
  return forward(request, env, { method: "POST", path: "/analyze" });
}

/** CORS preflight: only allowed origins get the go-ahead. */
export async function handleOptions(
  request,
  env = process.env,
  { methods = "POST, OPTIONS", allowHeaders = "content-type" } = {},
) {
  const origin = checkOrigin(request, env);
  if (!origin.ok) return forbiddenOrigin();
  return new Response(null, {
    status: 204,
    headers: {
      ...origin.cors,
      "access-control-allow-methods": methods,
      "access-control-allow-headers": allowHeaders,
      "access-control-max-age": "600",
    },
  });
}

export function POST(request) {
  return handleAnalyze(request, process.env);
}

export function OPTIONS(request) {
  return handleOptions(request, process.env);
}
