// Turns a failed call to /api/analyze into words for people.
//
// Three kinds of error bodies reach the page:
//   API Gateway's own:      {"message": "Forbidden" | "Too Many Requests" | "Limit Exceeded" | ...}
//   the function's / proxy: {"error": {"code": "...", "message": "<a sentence>"}, "request_id"}
//   anything else (an HTML error page, an empty body): only the status is known.
// The result never contains the raw body, only a title, a message, and an optional
// `detail` (the function's own human-written sentence).

/** Retry-After as seconds (delta-seconds or an HTTP date), or null. */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null || value === "") return null;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

function gatewayMessage(body) {
  return body && typeof body === "object" && typeof body.message === "string" ? body.message : "";
}

function apiError(body) {
  const error = body && typeof body === "object" ? body.error : null;
  if (!error || typeof error !== "object") return { code: "", message: "" };
  return {
    code: typeof error.code === "string" ? error.code : "",
    message: typeof error.message === "string" ? error.message : "",
  };
}

const wait = (seconds, fallback) => {
  const s = seconds ?? fallback;
  return s === 1 ? "a second" : `${s} seconds`;
};

/**
 * @param {{status: number, body: unknown, retryAfter?: string|null}} failure
 * @returns {{kind: string, title: string, message: string, detail: string,
 *            retry: boolean, retryAfterSeconds: number|null, status: number}}
 */
export function describeFailure({ status, body, retryAfter = null }) {
  const gw = gatewayMessage(body).toLowerCase();
  const { code, message: apiMessage } = apiError(body);
  const seconds = parseRetryAfter(retryAfter);
  const out = (kind, title, message, retry, extra = {}) => ({
    kind,
    title,
    message,
    detail: apiMessage,
    retry,
    retryAfterSeconds: retry ? seconds : null,
    status,
    ...extra,
  });

  switch (status) {
    case 400:
    case 422:
      return out(
        "bad_request",
        "The service couldn't use this image",
        "The image was received but couldn't be analysed. Try another photo.",
        false,
      );
    case 403:
      if (code === "origin_not_allowed")
        return out(
          "origin",
          "This website isn't allowed to use the analysis service",
          "The service only answers pages from approved websites. Whoever runs this site needs to add it to the allowed origins.",
          false,
        );
      if (gw.includes("missing authentication token"))
        return out(
          "route",
          "The analysis service address is wrong",
          "This site is calling an address the service doesn't have. Whoever runs this site needs to fix its API URL; trying again won't help.",
          false,
        );
      return out(
        "key",
        "Access to the analysis service was refused",
        "The site's access key was rejected (missing, revoked or wrong). Whoever runs this site needs to fix it; trying again won't help.",
        false,
      );
    case 404:
      if (code === "upload_not_found")
        return out(
          "upload_missing",
          "The uploaded photo couldn't be found",
          "Uploaded photos are kept only for a few minutes and used once. Send the photo again.",
          true,
        );
      if (code === "job_not_found")
        return out(
          "job_missing",
          "The analysis job can't be found",
          "The service no longer knows this job (jobs are kept for a day). Send the photo again.",
          true,
        );
      return out(
        "route",
        "The service doesn't offer this",
        "This site called an address the analysis service doesn't have. Whoever runs this site needs to update it.",
        false,
      );
    case 409:
      if (code === "idempotency_in_progress")
        return out(
          "in_progress",
          "The analysis is still being started",
          `The service is still handling the first attempt. Wait ${wait(seconds, "a few")} and try again.`,
          true,
        );
      return out(
        "conflict",
        "This request clashed with an earlier one",
        "The service saw a different photo or settings under the same request. Send the photo again.",
        true,
      );
    case 413:
      if (code === "upload_too_large")
        return out(
          "too_large",
          "This photo is larger than the service accepts",
          "The photo is over the service's upload limit, even after shrinking. Try a smaller or cropped image.",
          false,
        );
      return out(
        "too_large",
        "This image is too large to send",
        "Even after shrinking, the upload went over the size limit. Try a smaller or cropped image.",
        false,
      );
    case 415:
      return out(
        "unsupported",
        "This file type isn't supported",
        "Send a photo in JPEG, PNG or WebP format.",
        false,
      );
    case 429:
      if (gw.includes("limit exceeded") || code === "quota_exceeded")
        return out(
          "quota",
          "The usage quota has run out",
          "This site has used all the analyses its plan allows for now. The quota resets later (daily or monthly), so please come back then.",
          false,
        );
      return out(
        "throttled",
        "Too many requests right now",
        `The service is limiting how fast it accepts requests. Wait ${wait(seconds, "a few")} and try again.`,
        true,
      );
    case 500:
      if (code === "proxy_not_configured")
        return out(
          "config",
          "This site isn't set up yet",
          "The server behind this page has no analysis service configured. Whoever runs this site needs to set it up.",
          false,
        );
      return out(
        "server",
        "Something went wrong on the server",
        "The server hit an unexpected error. Trying again may work.",
        true,
      );
    case 502:
      if (code === "upstream_unreachable")
        return out(
          "unreachable",
          "The analysis service can't be reached",
          "This site's server couldn't connect to the analysis service. Try again in a moment.",
          true,
        );
      if (gw.includes("internal server error") || !code)
        return out(
          "crash",
          "The analysis service failed",
          "The service hit an internal error while handling this image. Trying again usually works.",
          true,
        );
      return out(
        "model",
        "The model couldn't produce an analysis",
        "The image model answered with something unusable. Trying again often helps.",
        true,
      );
    case 503:
      // No Gemini key on the server: waiting will not help, so no retry is offered.
      if (code === "gemini_not_configured")
        return out(
          "not_configured",
          "Photo analysis isn't switched on here",
          "This server has no key for the image model yet, so it can't analyse photos. Whoever runs the site needs to add one.",
          false,
        );
      return out(
        "unavailable",
        "The image model is busy",
        `The model is temporarily unavailable. Try again in ${wait(seconds, "a few")}.`,
        true,
      );
    case 504:
      return out(
        "timeout",
        "The analysis took too long",
        "The service stopped waiting for the model. Try again, perhaps with a faster speed setting.",
        true,
      );
    default:
      return out(
        "unexpected",
        `Unexpected answer from the server (HTTP ${status})`,
        "Something unexpected happened. Trying again may work.",
        status >= 500,
      );
  }
}

/** fetch() rejected without an HTTP answer (offline, DNS, connection reset...). */
export function describeNetworkFailure() {
  return {
    kind: "network",
    title: "Can't reach the server",
    message: "The request never got an answer: check your internet connection, then try again.",
    detail: "",
    retry: true,
    retryAfterSeconds: null,
    status: 0,
  };
}

/** The server said 200 but the body is not an analysis. */
export function describeBadResult() {
  return {
    kind: "bad_result",
    title: "The answer couldn't be read",
    message: "The service replied, but not with an analysis this page understands. Try again.",
    detail: "",
    retry: true,
    retryAfterSeconds: null,
    status: 200,
  };
}
