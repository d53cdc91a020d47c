// Scarab's page: pick/drop/paste a photo, shrink it, send it to /api/analyze (or by
// presigned upload and an asynchronous job, see lib/jobs.js), show the answer. No
// framework, no build step, no secrets.

import { analyze } from "./lib/api.js";
import { setupDigits } from "./lib/digits.js";
import { describeFailure } from "./lib/errors.js";
import {
  ImageError,
  prepareImage,
  REGULAR_MAX_BYTES,
  REGULAR_MAX_SIDE,
  toDataUrl,
} from "./lib/image.js";
import {
  needsUpload,
  newSubmission,
  pollJob,
  startJob,
  uploadPhoto,
  usesJob,
  withTimeout,
} from "./lib/jobs.js";
import { formatBytes, renderResult } from "./lib/render.js";

const CLIENT_TIMEOUT_MS = 65_000; // API Gateway gives up at 29 s; this is a safety net.
const MAX_RETRY_WAIT_S = 120;
// Optional {maxSide, maxBytes} overriding the upload budget, set before the page loads
// (the browser tests use it to send an oversized upload and meet the proxy's 413).
// It only changes what this browser sends; the server enforces its limits regardless.
// With such an override the page also sends directly (no presigned upload) unless it
// says {upload: true}: the 413 test means to meet the proxy's own limit.
const UPLOAD_LIMITS = globalThis.scarabUploadLimits ?? null;
const UPLOADS_ENABLED = !UPLOAD_LIMITS || UPLOAD_LIMITS.upload === true;

/** How a photo is prepared for a tier: the regular tier keeps (nearly) full resolution. */
function profileFor(speed) {
  const name = usesJob(speed) ? "regular" : "standard";
  if (UPLOAD_LIMITS) {
    const { maxSide, maxBytes } = UPLOAD_LIMITS;
    return { name, limits: { maxSide, maxBytes } };
  }
  return {
    name,
    limits: name === "regular" ? { maxSide: REGULAR_MAX_SIDE, maxBytes: REGULAR_MAX_BYTES } : {},
  };
}

// Failures to start a job after which the API may have started it anyway.
const RESEND_KINDS = new Set(["network", "unreachable", "timeout", "unavailable", "in_progress", "crash", "server"]);

const PHASES = {
  preparing: "Preparing the photo…",
  uploading: "Uploading the photo…",
  sending: "Analysing the photo…",
  starting: "Starting the analysis job…",
  queued: "Queued: waiting for a worker…",
  running: "Running: the model is studying the photo…",
  done: "Done.",
};

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
  progressLabel: $("#progress-label"),
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
  file: null, // the photo as chosen
  prepared: null, // {blob, width, height, originalWidth, originalHeight, originalBytes, profile, dataUrl?}
  preparing: null, // {profile, promise} while a photo is being prepared
  unsentJob: null, // {bodyJson, submission} whose POST /api/jobs got no usable answer
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

function setPhase(phase) {
  ui.progress.dataset.phase = phase;
  ui.progressLabel.textContent = PHASES[phase];
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

// Prepare state.file for `profile` (once per file and profile); resolves the prepared
// photo, or null when another photo was chosen meanwhile. Throws ImageError.
function prepareFor(profile) {
  if (state.prepared?.profile === profile.name) return Promise.resolve(state.prepared);
  if (state.preparing?.profile === profile.name) return state.preparing.promise;
  const file = state.file;
  const generation = state.generation;
  ui.analyzeButton.disabled = true;
  ui.imageInfo.textContent = "Preparing the photo…";
  const promise = (async () => {
    const prepared = await prepareImage(file, profile.limits);
    if (generation !== state.generation) return null;
    state.prepared = { ...prepared, profile: profile.name };
    ui.imageInfo.textContent =
      `${prepared.originalWidth}×${prepared.originalHeight}, ${formatBytes(file.size)}; ` +
      `will upload ${prepared.width}×${prepared.height}, ${formatBytes(prepared.blob.size)}`;
    return state.prepared;
  })();
  state.preparing = { profile: profile.name, promise };
  const settle = () => {
    if (state.preparing?.promise === promise) state.preparing = null;
    if (!state.controller) ui.analyzeButton.disabled = !state.prepared;
  };
  promise.then(settle, settle);
  return promise;
}

function unreadable(err) {
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

async function selectFile(file) {
  if (!file) return;
  const generation = ++state.generation;
  state.controller?.abort(new DOMException("A new photo was chosen.", "AbortError"));
  state.file = file;
  state.prepared = null;
  state.preparing = null;
  state.unsentJob = null;
  clearOutcome();
  ui.analyzeButton.disabled = true;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(file);
  ui.preview.src = state.previewUrl;
  ui.previewFigure.hidden = false;
  setStatus("Preparing the photo…");
  try {
    const prepared = await prepareFor(profileFor(ui.speed.value));
    if (!prepared || generation !== state.generation) return;
    setStatus("Photo ready. Choose the options, then press Analyse photo.");
  } catch (err) {
    if (generation !== state.generation) return;
    state.file = null;
    unreadable(err);
  }
}

async function dataUrlOf(prepared) {
  prepared.dataUrl ??= await toDataUrl(prepared.blob);
  return prepared.dataUrl;
}

// Where the photo goes in the body: {upload: key} after a presigned upload when it is
// too large for a direct request (and uploads are offered), else {image: data URL}.
async function photoFields(prepared, signal) {
  if (UPLOADS_ENABLED && needsUpload(prepared.blob.size)) {
    setPhase("uploading");
    const uploaded = await uploadPhoto(prepared.blob, signal);
    if (uploaded.ok) return { ok: true, fields: { upload: uploaded.key }, uploaded: true };
    if (!uploaded.fallback) return uploaded;
  }
  return { ok: true, fields: { image: await dataUrlOf(prepared) }, uploaded: false };
}

async function viaJob(body, signal, run) {
  run.job = true;
  setPhase("starting");
  // "Try again" after a job could not be started re-sends the same submission (same
  // Idempotency-Key): if one of the lost attempts did start a job, that job is returned.
  const bodyJson = JSON.stringify(body);
  const submission =
    state.unsentJob?.bodyJson === bodyJson ? state.unsentJob.submission : newSubmission(body);
  state.unsentJob = null;
  const started = await startJob(submission, signal);
  if (!started.ok && RESEND_KINDS.has(started.failure?.kind)) state.unsentJob = { bodyJson, submission };
  if (!started.ok) return started;
  run.jobId = started.jobId;
  setPhase("queued");
  return pollJob(started.jobId, signal, {
    onStatus(status) {
      if (status === "queued" || status === "running") setPhase(status);
      else if (status === "succeeded") setPhase("done");
    },
  });
}

async function direct(body, signal) {
  setPhase("sending");
  const limit = withTimeout(signal, CLIENT_TIMEOUT_MS);
  try {
    return await analyze(body, limit.signal);
  } finally {
    limit.done();
  }
}

// The whole analysis: upload if needed, then a job (regular tier) or a direct request
// that falls back to a job when it answers 504 (or when the API has no jobs).
async function analyse(prepared, options, signal, run) {
  let photo = await photoFields(prepared, signal);
  if (!photo.ok) return photo;
  if (usesJob(options.speed)) {
    const outcome = await viaJob({ ...photo.fields, ...options }, signal, run);
    if (!outcome.fallback) return outcome;
    run.job = false;
  }
  const answer = await direct({ ...photo.fields, ...options }, signal);
  if (answer.ok || answer.failure.status !== 504) return answer;
  // The timed-out request may still finish and delete its upload: use a fresh one.
  if (photo.uploaded) {
    photo = await photoFields(prepared, signal);
    if (!photo.ok) return photo;
  }
  const outcome = await viaJob({ ...photo.fields, ...options }, signal, run);
  if (!outcome.fallback) return outcome;
  run.job = false;
  return answer;
}

async function submit() {
  if (!state.file || state.controller) return;
  clearOutcome();
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  setPhase("preparing");
  setStatus("Analysing the photo…");
  const started = performance.now();
  const generation = state.generation;
  const options = { speed: ui.speed.value, imageType: ui.imageType.value };
  const run = { job: false, jobId: null };
  try {
    const prepared = await prepareFor(profileFor(options.speed));
    if (!prepared || generation !== state.generation) return;
    const outcome = await analyse(prepared, options, controller.signal, run);
    if (outcome.ok) {
      const elapsedMs = performance.now() - started;
      renderResult(ui.result, outcome.data, {
        elapsedMs,
        uploadBytes: prepared.blob.size,
        jobId: run.jobId,
      });
      ui.result.hidden = false;
      setStatus(run.job ? `Analysis ready (job done in ${(elapsedMs / 1000).toFixed(1)} s).` : "Analysis ready.");
      ui.result.focus();
    } else {
      showError(outcome.failure);
    }
  } catch (err) {
    if (err instanceof ImageError) {
      unreadable(err);
    } else if (err?.name === "TimeoutError") {
      showError(describeFailure({ status: 504, body: null }));
    } else if (generation === state.generation) {
      setStatus(
        run.job
          ? "Cancelled. The analysis may still finish on the server, but this page stopped waiting for it. You can send the photo again."
          : "Cancelled. You can send the photo again when you're ready.",
      );
    }
  } finally {
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

// The regular tier keeps a larger photo: prepare it again when the tier changes.
ui.speed.addEventListener("change", () => {
  if (!state.file || state.controller) return;
  const generation = state.generation;
  prepareFor(profileFor(ui.speed.value)).catch((err) => {
    if (generation === state.generation) unreadable(err);
  });
});

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
