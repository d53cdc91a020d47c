// The dashboard's Chart.js is served from public/vendor/ (no CDN: the page works
// offline); the copy there is the version package.json and package-lock.json pin.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const read = (path) => readFileSync(new URL(`../${path}`, import.meta.url), "utf8");

test("public/vendor/chart.umd.min.js is the pinned chart.js", () => {
  const pinned = JSON.parse(read("package.json")).dependencies["chart.js"];
  assert.match(pinned, /^\d+\.\d+\.\d+$/, "pinned exactly");
  const lock = JSON.parse(read("package-lock.json"));
  assert.equal(lock.packages["node_modules/chart.js"].version, pinned);
  const banner = read("public/vendor/chart.umd.min.js").slice(0, 200);
  assert.match(banner, new RegExp(`Chart\\.js v${pinned.replaceAll(".", "\\.")}\\b`));
  assert.match(read("public/vendor/chart.js.LICENSE.md"), /MIT/);
});

test("the dashboard loads it from its own files, and nothing from elsewhere", () => {
  const html = read("public/dashboard.html");
  assert.match(html, /<script src="vendor\/chart\.umd\.min\.js"><\/script>/);
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
  assert.match(html, /default-src 'self'/);
});
