// A tiny stand-in for the Scarab API (API Gateway + the function) for the proxy tests.
import http from "node:http";

export async function startUpstream() {
  const upstream = {
    requests: [],
    replies: [],
    url: "",
    reply(status, body, headers = {}) {
      upstream.replies.push({ status, body, headers });
    },
    replyAfter(ms, status, body) {
      upstream.replies.push({ status, body, headers: {}, delay: ms });
    },
    // Headers and the first bytes of a longer body, then nothing until the test closes.
    replyStalled(status = 200) {
      upstream.replies.push({ status, body: "", headers: {}, broken: "stall" });
    },
    // Headers and the first bytes of a longer body, then the connection is reset.
    replyCutOff(status = 200) {
      upstream.replies.push({ status, body: "", headers: {}, broken: "reset" });
    },
    // A JSON-looking body of `size` bytes, sent in 64 KB pieces; with `declared` false
    // it is chunked (no Content-Length), so only counting what arrives can bound it.
    replyLarge(size, { declared = true } = {}) {
      upstream.replies.push({ status: 200, body: "", headers: {}, large: { size, declared } });
    },
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      upstream.requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      const next = upstream.replies.shift() ?? { status: 200, body: { analysis: { characters: [] } } };
      if (next.broken) {
        const part = '{"analysis": {"characters": [';
        res.writeHead(next.status, { "content-type": "application/json", "content-length": "4096" });
        res.write(part);
        if (next.broken === "reset") setTimeout(() => res.socket?.destroy(), 50).unref();
        return;
      }
      if (next.large) {
        const { size, declared } = next.large;
        const head = { "content-type": "application/json" };
        if (declared) head["content-length"] = String(size);
        res.writeHead(next.status, head);
        const piece = Buffer.alloc(64 * 1024, 0x20);
        let left = size;
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, piece.length);
            left -= n;
            if (!res.write(piece.subarray(0, n))) return res.once("drain", pump);
          }
          res.end();
        };
        res.on("error", () => {});
        pump();
        return;
      }
      const send = () => {
        const text = typeof next.body === "string" ? next.body : JSON.stringify(next.body);
        res.writeHead(next.status, { "content-type": "application/json", ...next.headers });
        res.end(text);
      };
      if (next.delay) setTimeout(send, next.delay).unref();
      else send();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  upstream.url = `http://127.0.0.1:${server.address().port}`;
  upstream.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    });
  return upstream;
}
