// Scarab's page: pick/drop/paste a photo, shrink it, send it to /api/analyze, show
// the answer. No framework, no build step, no secrets.

import { analyze } from "./lib/api.js";
import { setupDigits } from "./lib/digits.js";
import { describeFailure } from "./lib/errors.js";
import { ImageError, prepareImage, toDataUrl } from "./lib/image.js";
import { formatBytes, renderResult } from "./lib/render.js";

const CLIENT_TIMEOUT_MS = 65_000; // API Gateway gives up at 29 s; this is a safety net.
const MAX_RETRY_WAIT_S = 120;
// Optional {maxSide, maxBytes} overriding the upload budget, set before the page loads
// (the browser tests use it to send an oversized upload and meet the proxy's 413).
// It only changes what this browser sends; the server enforces its limits regardless.
const UPLOAD_LIMITS = globalThis.scarabUploadLimits ?? {};

const $ = (selector) => document.querySelector(selector);
const ui = {
  form: $("#analyze-form"),
  dropZone: $("#drop-zone"),
  fileInput: $("#file-input"),
  previewFigure: $("#preview-figure"),
  preview: $("#preview"),
  imageInfo: $("#image-info"),
  speed: $("#speed"),
  imageType: $("#image-type"),
  analyzeButton: $("#analyze-button"),
  status: $("#status"),
  progress: $("#progress"),
  elapsed: $("#elapsed"),
  cancelButton: $("#cancel-button"),
  error: $("#error"),
  errorTitle: $("#error-title"),
  errorMessage: $("#error-message"),
  errorDetail: $("#error-detail"),
  retryButton: $("#retry-button"),
  result: $("#result"),
};

const state = {
  prepared: null, // {blob, width, height, originalWidth, originalHeight, originalBytes, dataUrl}
  controller: null,
  ticker: null,
  countdown: null,
  previewUrl: null,
  generation: 0, // bumps on every new photo so stale work is ignored
};

function setStatus(message) {
  ui.status.textContent = message;
}

function clearOutcome() {
  ui.error.hidden = true;
  ui.result.hidden = true;
  clearInterval(state.countdown);
}

function showError(failure) {
  ui.errorTitle.textContent = failure.title;
  ui.errorMessage.textContent = failure.message;
  const detail = failure.detail && failure.detail !== failure.message ? failure.detail : "";
  ui.errorDetail.textContent = detail ? `The service said: ${detail}` : "";
  ui.errorDetail.hidden = !detail;
  ui.error.dataset.kind = failure.kind;
  ui.error.dataset.status = String(failure.status);
  ui.retryButton.hidden = !(failure.retry && state.prepared);
  clearInterval(state.countdown);
  const wait = Math.min(failure.retryAfterSeconds ?? 0, MAX_RETRY_WAIT_S);
  if (!ui.retryButton.hidden && wait > 0) {
    let left = wait;
    const tick = () => {
      ui.retryButton.disabled = left > 0;
      ui.retryButton.textContent = left > 0 ? `Try again in ${left} s` : "Try again";
      if (left-- <= 0) clearInterval(state.countdown);
    };
    tick();
    state.countdown = setInterval(tick, 1000);
  } else {
    ui.retryButton.disabled = false;
    ui.retryButton.textContent = "Try again";
  }
  ui.error.hidden = false;
  setStatus("");
  ui.error.focus();
}

function setBusy(busy) {
  ui.progress.hidden = !busy;
  ui.analyzeButton.disabled = busy || !state.prepared;
  ui.speed.disabled = busy;
  ui.imageType.disabled = busy;
  clearInterval(state.ticker);
  if (busy) {
    const started = performance.now();
    ui.elapsed.textContent = "0.0 s";
    state.ticker = setInterval(() => {
      ui.elapsed.textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`;
    }, 100);
  }
}

async function selectFile(file) {
  if (!file) return;
  const generation = ++state.generation;
  state.controller?.abort(new DOMException("A new photo was chosen.", "AbortError"));
  state.prepared = null;
  clearOutcome();
  ui.analyzeButton.disabled = true;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(file);
  ui.preview.src = state.previewUrl;
  ui.previewFigure.hidden = false;
  ui.imageInfo.textContent = "Preparing the photo…";
  setStatus("Preparing the photo…");
  try {
    const prepared = await prepareImage(file, UPLOAD_LIMITS);
    const dataUrl = await toDataUrl(prepared.blob);
    if (generation !== state.generation) return;
    state.prepared = { ...prepared, dataUrl };
    ui.imageInfo.textContent =
      `${prepared.originalWidth}×${prepared.originalHeight}, ${formatBytes(file.size)}; ` +
      `will upload ${prepared.width}×${prepared.height}, ${formatBytes(prepared.blob.size)}`;
    ui.analyzeButton.disabled = false;
    setStatus("Photo ready. Choose the options, then press Analyse photo.");
  } catch (err) {
    if (generation !== state.generation) return;
    ui.previewFigure.hidden = true;
    showError({
      kind: "unreadable_image",
      title: "This photo can't be used",
      message: err instanceof ImageError ? err.message : "The photo couldn't be read. Try another one.",
      detail: "",
      retry: false,
      retryAfterSeconds: null,
      status: 0,
    });
  }
}

async function submit() {
  if (!state.prepared || state.controller) return;
  clearOutcome();
  const controller = new AbortController();
  state.controller = controller;
  const timeout = setTimeout(
    () => controller.abort(new DOMException("The request took too long.", "TimeoutError")),
    CLIENT_TIMEOUT_MS,
  );
  setBusy(true);
  setStatus("Analysing the photo…");
  const started = performance.now();
  const generation = state.generation;
  const body = {
    image: state.prepared.dataUrl,
    speed: ui.speed.value,
    imageType: ui.imageType.value,
  };
  try {
    const outcome = await analyze(body, controller.signal);
    if (outcome.ok) {
      renderResult(ui.result, outcome.data, {
        elapsedMs: performance.now() - started,
        uploadBytes: state.prepared.blob.size,
      });
      ui.result.hidden = false;
      setStatus("Analysis ready.");
      ui.result.focus();
    } else {
      showError(outcome.failure);
    }
  } catch (err) {
    if (err?.name === "TimeoutError") {
      showError(describeFailure({ status: 504, body: null }));
    } else if (generation === state.generation) {
      setStatus("Cancelled. You can send the photo again when you're ready.");
    }
  } finally {
    clearTimeout(timeout);
    if (state.controller === controller) state.controller = null;
    setBusy(false);
  }
}

function firstImage(items) {
  for (const item of items ?? []) {
    const file = item instanceof File ? item : item.kind === "file" ? item.getAsFile() : null;
    if (file && (!file.type || file.type.startsWith("image/"))) return file;
  }
  return null;
}

ui.fileInput.addEventListener("change", () => {
  selectFile(ui.fileInput.files?.[0]);
});

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});

ui.cancelButton.addEventListener("click", () => {
  state.controller?.abort(new DOMException("Cancelled by the user.", "AbortError"));
  ui.analyzeButton.focus();
});

ui.retryButton.addEventListener("click", () => submit());

for (const type of ["dragenter", "dragover"]) {
  ui.dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    ui.dropZone.classList.add("dragging");
  });
}
ui.dropZone.addEventListener("dragleave", () => ui.dropZone.classList.remove("dragging"));
ui.dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  ui.dropZone.classList.remove("dragging");
  const file = firstImage(event.dataTransfer?.files);
  if (file) selectFile(file);
  else setStatus("That wasn't an image. Drop a photo file.");
});
// A photo dropped next to the zone should not make the browser navigate away.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

document.addEventListener("paste", (event) => {
  const file = firstImage(event.clipboardData?.items);
  if (file) {
    event.preventDefault();
    selectFile(file);
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.controller) ui.cancelButton.click();
});

document.documentElement.dataset.ready = "true";
setupDigits($("#digits"));
