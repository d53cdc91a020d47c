// "No Gemini needed": the offline digit model, for servers that offer it.
//
// The section stays hidden unless GET /api/models lists a `digits` model (scarab serve
// does; the Vercel deployment only proxies /api/analyze). Draw a digit with a mouse,
// pen or finger, or let the page write one (the keyboard path), then POST the canvas
// as a PNG to /api/predict/digits.

import { describeFailure, describeNetworkFailure } from "./errors.js";

const PEN_WIDTH = 14;

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
    ctx.fillStyle = "#000";
    ctx.font = `bold ${Math.round(canvas.height * 0.8)}px sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(String(digit), canvas.width / 2, canvas.height / 2);
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
