// The Vercel function (api/analyze.js) on its own: forwarding, pass-through, limits,
// origins, and the key never leaving the server.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";

import {
  DEFAULT_TIMEOUT_MS,
  handleAnalyze,
  handleOptions,
  MAX_BODY_BYTES,
  MAX_RESPONSE_BYTES,
  OPTIONS,
  POST,
  timeoutMs,
} from "../api/analyze.js";
import { startUpstream } from "../test-support/upstream.mjs";

const KEY = "test-scarab-key-DO-NOT-LEAK-9f8e7d";
const SITE = "scarab.example.com";

let upstream;
let env;
let logs;
let originalLog;

before(async () => {
  upstream = await startUpstream();
  originalLog = console.log;
  console.log = (...args) => logs.push(args.join(" "));
});
after(async () => {
  console.log = originalLog;
  await upstream.close();
});
beforeEach(() => {
  upstream.requests.length = 0;
  upstream.replies.length = 0;
  logs = [];
  env = { SCARAB_API_URL: `${upstream.url}/default/`, SCARAB_API_KEY: KEY };
});

function post(body, { origin, headers = {}, host = SITE } = {}) {
  const h = { host, "content-type": "application/json", ...headers };
  if (origin) h.origin = origin;
  return new Request(`https://${host}/api/analyze`, { method: "POST", headers: h, body });
}

async function everything(response) {
  const text = await response.text();
  return `${response.status} ${JSON.stringify([...response.headers])} ${text}`;
}

describe("forwarding", () => {
  test("sends the body unchanged to {SCARAB_API_URL}/analyze with x-api-key", async () => {
    const payload = JSON.stringify({ image: "data:image/jpeg;base64,AAAA", speed: "fast", imageType: "tomb" });
    upstream.reply(200, { analysis: { characters: [] }, request_id: "r-1" });
    const response = await handleAnalyze(post(payload, { origin: `https://${SITE}` }), env);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { analysis: { characters: [] }, request_id: "r-1" });
    assert.equal(upstream.requests.length, 1);
    const seen = upstream.requests[0];
    assert.equal(seen.method, "POST");
    assert.equal(seen.url, "/default/analyze");
    assert.equal(seen.headers["x-api-key"], KEY);
    assert.equal(seen.headers["content-type"], "application/json");
    assert.equal(seen.body.toString(), payload);
  });

  test("does not forward the browser's cookies or other headers", async () => {
    upstream.reply(200, { analysis: { characters: [] } });
    await handleAnalyze(post("{}", { headers: { cookie: "session=abc", authorization: "Bearer x" } }), env);
    const seen = upstream.requests[0].headers;
    assert.equal(seen.cookie, undefined);
    assert.equal(seen.authorization, undefined);
  });

  test("POST reads its configuration from process.env", async () => {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      upstream.reply(200, { analysis: { characters: [] } });
      const response = await POST(post("{}"));
      assert.equal(response.status, 200);
      assert.equal(upstream.requests[0].headers["x-api-key"], KEY);
    } finally {
      for (const name of Object.keys(env)) if (!(name in saved)) delete process.env[name];
    }
  });
});

describe("status pass-through", () => {
  const cases = [
    [400, { error: { code: "bad_request", message: "Field 'image' is required." }, request_id: "r" }],
    [403, { message: "Forbidden" }],
    [403, { message: "Missing Authentication Token" }],
    [413, { message: "Request Too Long" }],
    [415, { error: { code: "unsupported_media_type", message: "Send a JPEG." }, request_id: "r" }],
    [422, { error: { code: "unprocessable", message: "No image found." }, request_id: "r" }],
    [429, { message: "Too Many Requests" }],
    [429, { message: "Limit Exceeded" }],
    [502, { message: "Internal server error" }],
    [503, { error: { code: "model_unavailable", message: "Try later." }, request_id: "r" }],
    [504, { message: "Endpoint request timed out" }],
  ];
  for (const [status, body] of cases) {
    test(`${status} ${JSON.stringify(body).slice(0, 40)} passes through unchanged`, async () => {
      upstream.reply(status, body);
      const response = await handleAnalyze(post("{}"), env);
      assert.equal(response.status, status);
      assert.deepEqual(await response.json(), body);
    });
  }

  test("Retry-After and the content type pass through", async () => {
    upstream.reply(503, { error: { code: "model_unavailable", message: "Busy." } }, { "retry-after": "7" });
    const response = await handleAnalyze(post("{}"), env);
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "7");
    assert.match(response.headers.get("content-type"), /application\/json/);
  });
});

describe("size limit", () => {
  test(`a declared Content-Length over ${MAX_BODY_BYTES} bytes gets 413 without calling the API`, async () => {
    const body = "x".repeat(MAX_BODY_BYTES + 1);
    const response = await handleAnalyze(post(body), env);
    assert.equal(response.status, 413);
    const json = await response.json();
    assert.equal(json.error.code, "payload_too_large");
    assert.ok(json.error.message.length > 10);
    assert.equal(upstream.requests.length, 0);
  });

  test("a streamed body (no Content-Length) is cut off at the limit", async () => {
    const chunk = new Uint8Array(1_000_000).fill(120);
    let sent = 0;
    const stream = new ReadableStream({
      pull(controller) {
        if (sent >= 6) return controller.close();
        sent += 1;
        controller.enqueue(chunk);
      },
    });
    const request = new Request(`https://${SITE}/api/analyze`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream,
      duplex: "half",
    });
    assert.equal(request.headers.get("content-length"), null);
    const response = await handleAnalyze(request, env);
    assert.equal(response.status, 413);
    assert.equal((await response.json()).error.code, "payload_too_large");
    assert.equal(upstream.requests.length, 0);
    assert.ok(sent < 6, "the proxy stopped reading once over the limit");
  });

  test("a body of exactly the limit is forwarded", async () => {
    const body = "y".repeat(MAX_BODY_BYTES);
    upstream.reply(200, { analysis: { characters: [] } });
    const response = await handleAnalyze(post(body), env);
    assert.equal(response.status, 200);
    assert.equal(upstream.requests[0].body.length, MAX_BODY_BYTES);
  });
});

describe("origins", () => {
  test("same origin is allowed without CORS headers", async () => {
    upstream.reply(200, { analysis: { characters: [] } });
    const response = await handleAnalyze(post("{}", { origin: `https://${SITE}` }), env);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("access-control-allow-origin"), null);
  });

  test("the same host with another scheme is another origin: 403", async () => {
    for (const origin of [`http://${SITE}`, `ws://${SITE}`]) {
      const response = await handleAnalyze(post("{}", { origin }), env);
      assert.equal(response.status, 403, origin);
      assert.equal((await response.json()).error.code, "origin_not_allowed");
    }
    const plain = new Request(`http://${SITE}/api/analyze`, {
      method: "POST",
      headers: { host: SITE, origin: `https://${SITE}`, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal((await handleAnalyze(plain, env)).status, 403, "https page, http proxy");
    assert.equal(upstream.requests.length, 0);
  });

  test("a foreign origin gets 403 origin_not_allowed and the API is not called", async () => {
    const response = await handleAnalyze(post("{}", { origin: "https://evil.example" }), env);
    assert.equal(response.status, 403);
    assert.equal((await response.json()).error.code, "origin_not_allowed");
    assert.equal(upstream.requests.length, 0);
  });

  test("an origin listed in ALLOWED_ORIGINS is allowed, with CORS headers", async () => {
    env.ALLOWED_ORIGINS = "https://other.example, https://friend.example/";
    upstream.reply(200, { analysis: { characters: [] } });
    const response = await handleAnalyze(post("{}", { origin: "https://friend.example" }), env);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("access-control-allow-origin"), "https://friend.example");
    assert.equal(response.headers.get("vary"), "Origin");
  });

  test("default ports are the same origin: :443 on https, :80 on http", async () => {
    upstream.reply(200, { analysis: { characters: [] } });
    const explicit = new Request(`https://${SITE}:443/api/analyze`, {
      method: "POST",
      headers: { host: `${SITE}:443`, origin: `https://${SITE}`, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal((await handleAnalyze(explicit, env)).status, 200, "Host with :443");
    upstream.reply(200, { analysis: { characters: [] } });
    const plain = new Request(`http://${SITE}/api/analyze`, {
      method: "POST",
      headers: { host: SITE, origin: `http://${SITE}:80`, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal((await handleAnalyze(plain, env)).status, 200, "Origin with :80");
    const otherPort = await handleAnalyze(post("{}", { origin: `https://${SITE}:8443` }), env);
    assert.equal(otherPort.status, 403, "another port is another origin");
  });

  test("allowed origins listed with their default port match the browser's Origin", async () => {
    env.ALLOWED_ORIGINS = "https://friend.example:443, HTTP://Other.Example:80/";
    for (const origin of ["https://friend.example", "http://other.example"]) {
      upstream.reply(200, { analysis: { characters: [] } });
      const response = await handleAnalyze(post("{}", { origin }), env);
      assert.equal(response.status, 200, origin);
      assert.equal(response.headers.get("access-control-allow-origin"), origin);
    }
    const refused = await handleAnalyze(post("{}", { origin: "https://friend.example:8443" }), env);
    assert.equal(refused.status, 403);
  });

  test("a Host header naming the caller's own page does not make it same-origin", async () => {
    // The function was reached at https://SITE; a client claiming Host: evil.example
    // and Origin https://evil.example is still a foreign origin.
    const request = new Request(`https://${SITE}/api/analyze`, {
      method: "POST",
      headers: { host: "evil.example", origin: "https://evil.example", "content-type": "application/json" },
      body: "{}",
    });
    const response = await handleAnalyze(request, env);
    assert.equal(response.status, 403);
    assert.equal((await response.json()).error.code, "origin_not_allowed");
    assert.equal(upstream.requests.length, 0);
  });

  test("a look-alike of an allowed origin is refused", async () => {
    env.ALLOWED_ORIGINS = "https://friend.example";
    for (const origin of ["http://friend.example", "https://friend.example.evil", "null"]) {
      const response = await handleAnalyze(post("{}", { origin }), env);
      assert.equal(response.status, 403, origin);
    }
    assert.equal(upstream.requests.length, 0);
  });

  test("preflight: allowed origins get 204 with CORS headers, others 403", async () => {
    env.ALLOWED_ORIGINS = "https://friend.example";
    const ok = await handleOptions(
      new Request(`https://${SITE}/api/analyze`, {
        method: "OPTIONS",
        headers: { host: SITE, origin: "https://friend.example" },
      }),
      env,
    );
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://friend.example");
    assert.match(ok.headers.get("access-control-allow-methods"), /POST/);
    const refused = await OPTIONS(
      new Request(`https://${SITE}/api/analyze`, {
        method: "OPTIONS",
        headers: { host: SITE, origin: "https://evil.example" },
      }),
    );
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get("access-control-allow-origin"), null);
  });
});

describe("failures of its own", () => {
  test("missing configuration is a 500 proxy_not_configured", async () => {
    const response = await handleAnalyze(post("{}"), { SCARAB_API_URL: upstream.url });
    assert.equal(response.status, 500);
    assert.equal((await response.json()).error.code, "proxy_not_configured");
  });

  test("an unreachable API is a 502 upstream_unreachable", async () => {
    env.SCARAB_API_URL = "http://127.0.0.1:9"; // discard port: nothing listens
    const response = await handleAnalyze(post("{}"), env);
    assert.equal(response.status, 502);
    assert.equal((await response.json()).error.code, "upstream_unreachable");
  });

  test("an API that sends its headers and then stalls is a 504 upstream_timeout", async () => {
    env.SCARAB_PROXY_TIMEOUT_MS = "300";
    upstream.replyStalled(200);
    const started = Date.now();
    const response = await handleAnalyze(post("{}"), env);
    assert.equal(response.status, 504);
    assert.match(response.headers.get("content-type"), /application\/json/);
    const json = await response.json();
    assert.equal(json.error.code, "upstream_timeout");
    assert.ok(json.error.message.length > 10);
    assert.ok(Date.now() - started < 5000, "the timeout covers the body, not only the headers");
    assert.equal(upstream.requests.length, 1);
    assert.ok(logs.some((line) => JSON.parse(line).status === 504), logs.join("\n"));
  });

  test("an API that resets the connection mid-body is a 502 upstream_unreachable", async () => {
    upstream.replyCutOff(200);
    const response = await handleAnalyze(post("{}"), env);
    assert.equal(response.status, 502);
    assert.match(response.headers.get("content-type"), /application\/json/);
    assert.equal((await response.json()).error.code, "upstream_unreachable");
    assert.equal(upstream.requests.length, 1);
    assert.ok(logs.some((line) => JSON.parse(line).status === 502), logs.join("\n"));
  });

  test("a slow API is a 504 upstream_timeout", async () => {
    env.SCARAB_PROXY_TIMEOUT_MS = "200";
    upstream.replyAfter(2000, 200, { analysis: { characters: [] } });
    const response = await handleAnalyze(post("{}"), env);
    assert.equal(response.status, 504);
    assert.equal((await response.json()).error.code, "upstream_timeout");
  });
});

describe("redirects are not followed", () => {
  for (const status of [301, 302, 303, 307, 308]) {
    test(`a ${status} from the API is a 502 and the key goes nowhere else`, async () => {
      const other = await startUpstream();
      try {
        upstream.reply(status, "", { location: `${other.url}/elsewhere` });
        const response = await handleAnalyze(post("{}"), env);
        assert.notEqual(response.status, 200, `a ${status} from the API was answered as 200`);
        assert.equal(response.status, 502);
        const json = await response.json();
        assert.equal(json.error.code, "upstream_unreachable");
        assert.match(json.error.message, /redirect/);
        assert.deepEqual(other.requests, [], "the key went to the redirect target");
        assert.equal(upstream.requests.length, 1);
        assert.ok(logs.some((line) => JSON.parse(line).reason === "redirected"), logs.join("\n"));
      } finally {
        await other.close();
      }
    });
  }
});

describe("SCARAB_PROXY_TIMEOUT_MS", () => {
  test("only an integer in 1..2^31-1 is used; anything else means the default", () => {
    for (const bad of ["-1", "1e20", "abc", "0", "1.5", "2147483648", "", " ", undefined, "0x10"]) {
      assert.equal(timeoutMs(bad), DEFAULT_TIMEOUT_MS, JSON.stringify(bad));
    }
    assert.equal(timeoutMs("300"), 300);
    assert.equal(timeoutMs(" 2147483647 "), 2 ** 31 - 1);
  });

  test("a bad value does not break the function: the request is answered", async () => {
    for (const bad of ["-1", "1e20", "abc"]) {
      env.SCARAB_PROXY_TIMEOUT_MS = bad;
      upstream.reply(200, { analysis: { characters: [] } });
      const response = await handleAnalyze(post("{}"), env);
      assert.equal(response.status, 200, bad);
    }
    assert.equal(upstream.requests.length, 3);
  });
});

describe("the API's answer is bounded", () => {
  for (const declared of [true, false]) {
    test(`an answer over ${MAX_RESPONSE_BYTES} bytes (${declared ? "Content-Length" : "chunked"}) is a 502`, async () => {
      upstream.replyLarge(MAX_RESPONSE_BYTES + 1, { declared });
      const response = await handleAnalyze(post("{}"), env);
      assert.equal(response.status, 502);
      const json = await response.json();
      assert.equal(json.error.code, "upstream_unreachable");
      assert.match(json.error.message, /larger than/);
      assert.ok(logs.some((line) => JSON.parse(line).reason === "answer_too_large"), logs.join("\n"));
    });
  }

  test("an answer of exactly the limit passes", async () => {
    upstream.replyLarge(MAX_RESPONSE_BYTES, { declared: false });
    const response = await handleAnalyze(post("{}"), env);
    assert.equal(response.status, 200);
    assert.equal((await response.text()).length, MAX_RESPONSE_BYTES);
  });
});

describe("the key never leaves the server", () => {
  test("not in responses, headers or logs, whatever the upstream answers", async () => {
    const answers = [
      [200, { analysis: { characters: [] }, echo: `x-api-key: ${KEY}` }],
      [403, { message: "Forbidden" }],
      [502, `<html>upstream said ${KEY}</html>`],
    ];
    const seen = [];
    for (const [status, body] of answers) {
      upstream.reply(status, body, { "x-echo": "nothing" });
      seen.push(await everything(await handleAnalyze(post("{}", { origin: `https://${SITE}` }), env)));
    }
    seen.push(await everything(await handleAnalyze(post("x".repeat(MAX_BODY_BYTES + 1)), env)));
    seen.push(await everything(await handleAnalyze(post("{}", { origin: "https://evil.example" }), env)));
    env.SCARAB_API_URL = "http://127.0.0.1:9";
    seen.push(await everything(await handleAnalyze(post("{}"), env)));
    assert.ok(logs.length >= 6, "the proxy logged each request");
    for (const text of [...seen, ...logs]) {
      assert.ok(!text.includes(KEY), `key leaked in: ${text.slice(0, 200)}`);
    }
    assert.match(seen[0], /\[redacted\]/);
  });
});
