// "No Gemini needed": the offline digit model, for servers that offer it.
//
// The section stays hidden unless GET /api/models lists a `digits` model (scarab serve
// does; the Vercel deployment only proxies /api/analyze). Draw a digit with a mouse,
// pen or finger, or let the page write one (the keyboard path), then POST the canvas
// as a PNG to /api/predict/digits.

import { describeFailure, describeNetworkFailure } from "./errors.js";

const PEN_WIDTH = 14;

// One pen path per digit in unit coordinates (x right, y down), written as a hand would:
// the model was trained on handwriting, and a typeface's 6, 8 and 9 lose their loops at
// 8x8. These are the strokes the model's tests read 10/10 (tests/predict/drawing.py).
const STROKES = {
  0: [[0.5, 0.05], [0.25, 0.15], [0.15, 0.5], [0.25, 0.85], [0.5, 0.95], [0.75, 0.85],
      [0.85, 0.5], [0.75, 0.15], [0.5, 0.05]],
  1: [[0.35, 0.2], [0.55, 0.05], [0.55, 0.95]],
  2: [[0.2, 0.25], [0.35, 0.08], [0.6, 0.05], [0.78, 0.2], [0.75, 0.42], [0.2, 0.95],
      [0.85, 0.95]],
  3: [[0.2, 0.12], [0.5, 0.05], [0.75, 0.15], [0.75, 0.35], [0.45, 0.5], [0.78, 0.62],
      [0.8, 0.85], [0.5, 0.95], [0.2, 0.88]],
  4: [[0.65, 0.95], [0.65, 0.05], [0.15, 0.65], [0.85, 0.65]],
  5: [[0.8, 0.05], [0.3, 0.05], [0.25, 0.45], [0.55, 0.4], [0.8, 0.55], [0.8, 0.8],
      [0.55, 0.95], [0.2, 0.9]],
  6: [[0.7, 0.05], [0.4, 0.25], [0.22, 0.6], [0.3, 0.9], [0.55, 0.95], [0.78, 0.8],
      [0.75, 0.58], [0.5, 0.5], [0.25, 0.65]],
  7: [[0.15, 0.05], [0.85, 0.05], [0.4, 0.95]],
  8: [[0.5, 0.5], [0.25, 0.35], [0.3, 0.1], [0.5, 0.05], [0.7, 0.1], [0.75, 0.35],
      [0.5, 0.5], [0.2, 0.7], [0.3, 0.92], [0.5, 0.95], [0.7, 0.92], [0.8, 0.7], [0.5, 0.5]],
  9: [[0.75, 0.4], [0.5, 0.5], [0.25, 0.35], [0.3, 0.1], [0.55, 0.05], [0.75, 0.2],
      [0.75, 0.4], [0.7, 0.95]],
};

/** Write `digit` on the pad as one pen stroke, the way the pointer handlers draw. */
function writeDigit(ctx, digit) {
  const { width, height } = ctx.canvas;
  const [x0, y0, w, h] = [width * 0.2, height * 0.1, width * 0.6, height * 0.8];
  ctx.beginPath();
  STROKES[digit].forEach(([x, y], i) => {
    const px = x0 + x * w;
    const py = y0 + y * h;
    if (i === 0) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  });
  ctx.stroke();
}

async function offersDigits() {
  try {
    const response = await fetch("/api/models", { headers: { accept: "application/json" } });
    if (!response.ok) return false;
    const body = await response.json();
    return Array.isArray(body?.models) && body.models.some((m) => m?.name === "digits");
  } catch {
    return false;
  }
}

function clear(ctx) {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
}

function enableDrawing(canvas, ctx) {
  let drawing = false;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [
      ((event.clientX - box.left) * canvas.width) / box.width,
      ((event.clientY - box.top) * canvas.height) / box.height,
    ];
  };
  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    ctx.beginPath();
    ctx.moveTo(...point(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    ctx.lineTo(...point(event));
    ctx.stroke();
  });
  const stop = () => {
    drawing = false;
  };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
}

async function predict(dataUrl) {
  let response;
  try {
    response = await fetch("/api/predict/digits", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ image: dataUrl }),
    });
  } catch {
    return { ok: false, failure: describeNetworkFailure() };
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const failure = describeFailure({
      status: response.status,
      body,
      retryAfter: response.headers.get("retry-after"),
    });
    return { ok: false, failure };
  }
  return { ok: true, body };
}

/** Wire up the #digits section if the server offers the model. */
export async function setupDigits(root) {
  if (!(await offersDigits())) return;
  const canvas = root.querySelector("#digit-pad");
  const result = root.querySelector("#digit-result");
  const ctx = canvas.getContext("2d");
  ctx.lineWidth = PEN_WIDTH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = "#000";
  clear(ctx);
  enableDrawing(canvas, ctx);

  root.querySelector("#digit-clear").addEventListener("click", () => {
    clear(ctx);
    result.textContent = "";
  });
  root.querySelector("#digit-sample").addEventListener("click", () => {
    clear(ctx);
    const digit = Math.floor(Math.random() * 10);
    writeDigit(ctx, digit);
    result.textContent = `The page wrote a ${digit}. Press Recognise.`;
  });
  root.querySelector("#digit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    result.textContent = "Reading…";
    const outcome = await predict(canvas.toDataURL("image/png"));
    if (!outcome.ok) {
      result.textContent = `${outcome.failure.title}. ${outcome.failure.message}`;
      return;
    }
    const { label, probability, model } = outcome.body ?? {};
    const sure = Number.isFinite(probability) ? ` (${Math.round(probability * 100)}% sure)` : "";
    const by = model?.name ? `, model ${model.name} ${model.version ?? ""}`.trimEnd() : "";
    result.textContent = `It reads ${label}${sure}${by}.`;
    result.dataset.label = String(label);
  });
  root.hidden = false;
}
