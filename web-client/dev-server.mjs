// A tiny local stand-in for Vercel: serves public/ and runs api/analyze.js, the same
// module Vercel deploys. `scarab serve` is the usual way to run the page locally; this
// is for working on the page or the proxy with node alone:
//
//   SCARAB_API_URL=http://127.0.0.1:8787 SCARAB_API_KEY=... node dev-server.mjs [port]

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";

import { handleAnalyze, handleOptions } from "./api/analyze.js";
import { handleJob } from "./api/jobs/[id].js";
import { handleJobs } from "./api/jobs.js";
import { handleStats } from "./api/stats.js";
import { handleUploads } from "./api/uploads.js";

const PUBLIC_DIR = fileURLToPath(new URL("./public/", import.meta.url));
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
};

async function serveStatic(req, res) {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  const file = normalize(join(PUBLIC_DIR, path.endsWith("/") ? `${path}index.html` : path));
  if (!file.startsWith(PUBLIC_DIR.replace(/[\\/]$/, "") + sep)) {
    res.writeHead(404).end();
    return;
  }
  try {
    if (!(await stat(file)).isFile()) throw new Error("not a file");
  } catch {
    res.writeHead(404, { "content-type": "text/plain" }).end("Not found");
    return;
  }
  res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
  createReadStream(file).pipe(res);
}

async function runFunction(handler, req, res, env) {
  const request = new Request(new URL(req.url, `http://${req.headers.host}`), {
    method: req.method,
    headers: req.headers,
    body: req.method === "POST" ? Readable.toWeb(req) : undefined,
    duplex: "half",
  });
  const response = await handler(request, env);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
}

const POST_ROUTES = { "/api/analyze": handleAnalyze, "/api/uploads": handleUploads, "/api/jobs": handleJobs };
const jobsOptions = (request, env) =>
  handleOptions(request, env, { allowHeaders: "content-type, idempotency-key" });
const OPTIONS_ROUTES = { "/api/analyze": handleOptions, "/api/uploads": handleOptions, "/api/jobs": jobsOptions };

/** The request handler for public/ and the api/ functions with the given environment. */
export function devHandler(env = process.env) {
  return (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    let work;
    if (POST_ROUTES[path]) {
      if (req.method === "POST") work = runFunction(POST_ROUTES[path], req, res, env);
      else if (req.method === "OPTIONS") work = runFunction(OPTIONS_ROUTES[path], req, res, env);
      else work = Promise.resolve(res.writeHead(405, { allow: "POST, OPTIONS" }).end());
    } else if (path.startsWith("/api/jobs/")) {
      if (req.method === "GET") work = runFunction(handleJob, req, res, env);
      else work = Promise.resolve(res.writeHead(405, { allow: "GET" }).end());
    } else if (path === "/api/stats") {
      if (req.method === "GET") work = runFunction(handleStats, req, res, env);
      else work = Promise.resolve(res.writeHead(405, { allow: "GET" }).end());
    } else if (req.method === "GET" || req.method === "HEAD") {
      work = serveStatic(req, res);
    } else {
      work = Promise.resolve(res.writeHead(405).end());
    }
    work.catch(() => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "internal", message: "Dev server error." } }));
    });
  };
}

/** An http.Server for public/ and /api/{analyze,uploads,jobs,jobs/<id>,stats}. */
export function createDevServer(env = process.env) {
  return http.createServer(devHandler(env));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? 3000);
  createDevServer().listen(port, "127.0.0.1", () => {
    console.log(`scarab web client on http://127.0.0.1:${port}/`);
  });
}
