// The page's wording for every failure the API contract lists.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  describeBadResult,
  describeFailure,
  describeNetworkFailure,
  parseRetryAfter,
} from "../public/lib/errors.js";

const fnError = (code, message = "A sentence from the function.") => ({
  error: { code, message },
  request_id: "req-1",
});

const cases = [
  [403, { message: "Forbidden" }, "key", false],
  [403, { message: "Missing Authentication Token" }, "route", false],
  [403, fnError("origin_not_allowed"), "origin", false],
  [413, { message: "Request Too Long" }, "too_large", false],
  [413, fnError("payload_too_large"), "too_large", false],
  [415, fnError("unsupported_media_type"), "unsupported", false],
  [429, { message: "Too Many Requests" }, "throttled", true],
  [429, { message: "Limit Exceeded" }, "quota", false],
  [502, { message: "Internal server error" }, "crash", true],
  [502, fnError("model_bad_output"), "model", true],
  [502, fnError("upstream_unreachable"), "unreachable", true],
  [503, fnError("model_unavailable"), "unavailable", true],
  [503, fnError("gemini_not_configured"), "not_configured", false],
  [504, { message: "Endpoint request timed out" }, "timeout", true],
  [504, fnError("upstream_timeout"), "timeout", true],
  [400, fnError("bad_request"), "bad_request", false],
  [422, fnError("unprocessable"), "bad_request", false],
  [500, fnError("proxy_not_configured"), "config", false],
  [500, null, "server", true],
  [418, "<html>teapot</html>", "unexpected", false],
];

for (const [status, body, kind, retry] of cases) {
  test(`${status} ${JSON.stringify(body)} -> ${kind}`, () => {
    const failure = describeFailure({ status, body });
    assert.equal(failure.kind, kind);
    assert.equal(failure.retry, retry);
    assert.equal(failure.status, status);
    assert.ok(failure.title.length > 5 && failure.message.length > 20);
    const words = `${failure.title} ${failure.message}`;
    assert.ok(!words.includes("{"), "never a JSON dump");
    assert.ok(!/failed to fetch/i.test(words));
  });
}

test("every listed status has its own wording", () => {
  const titles = new Set(cases.map(([status, body]) => describeFailure({ status, body }).title));
  assert.ok(titles.size >= 15, `only ${titles.size} distinct titles`);
});

test("throttled vs quota are told apart", () => {
  const throttled = describeFailure({ status: 429, body: { message: "Too Many Requests" }, retryAfter: "3" });
  const quota = describeFailure({ status: 429, body: { message: "Limit Exceeded" } });
  assert.notEqual(throttled.title, quota.title);
  assert.equal(throttled.retryAfterSeconds, 3);
  assert.match(throttled.message, /3 seconds/);
  assert.match(quota.message, /quota/i);
});

test("the function's own sentence is kept as detail, API Gateway's message is not", () => {
  assert.equal(describeFailure({ status: 503, body: fnError("x", "Gemini is busy.") }).detail, "Gemini is busy.");
  assert.equal(describeFailure({ status: 403, body: { message: "Forbidden" } }).detail, "");
});

test("Retry-After: seconds, HTTP dates, junk", () => {
  assert.equal(parseRetryAfter("12"), 12);
  assert.equal(parseRetryAfter(null), null);
  assert.equal(parseRetryAfter("soon"), null);
  const now = Date.parse("2030-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("Tue, 01 Jan 2030 00:00:30 GMT", now), 30);
  assert.equal(parseRetryAfter("Tue, 01 Jan 2029 00:00:30 GMT", now), 0);
});

test("network failure and unreadable 200 have their own words", () => {
  const network = describeNetworkFailure();
  assert.equal(network.kind, "network");
  assert.ok(network.retry);
  assert.match(network.message, /connection/);
  assert.equal(describeBadResult().kind, "bad_result");
});
