// /train-lora: pick 1-5 images (previewed), name it, start, and follow the job live (SSE).
"use strict";

const form = document.getElementById("train-form");
const input = document.getElementById("images");
const thumbs = document.getElementById("thumbs");
const errorBox = document.getElementById("train-error");
const card = document.getElementById("progress-card");
const bar = document.getElementById("progress");
const text = document.getElementById("progress-text");
const cancelBtn = document.getElementById("cancel-btn");
const useLink = document.getElementById("use-lora");
const ALLOWED = ["image/png", "image/jpeg", "image/webp"];
let jobId = null;
let source = null;

function checkFiles() {
  const files = [...input.files];
  if (files.length < 1 || files.length > 5) return `Choose 1 to 5 images (you chose ${files.length}).`;
  const bad = files.find((f) => !ALLOWED.includes(f.type));
  if (bad) return `${bad.name} is not a PNG, JPEG or WEBP image.`;
  return null;
}

input.addEventListener("change", () => {
  thumbs.replaceChildren(...[...input.files].map((f) =>
    el("li", {}, el("img", { src: URL.createObjectURL(f), alt: f.name }))));
  const problem = checkFiles();
  showError(errorBox, problem ? new Error(problem) : null);
});

function fmtEta(s) {
  if (s === null || s === undefined) return "";
  return s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s left` : `${Math.round(s)} s left`;
}

function render(job) {
  bar.value = job.progress || 0;
  const loss = job.loss === null || job.loss === undefined ? "" : ` · loss ${job.loss.toFixed(4)}`;
  const eta = job.status === "running" ? ` · ${fmtEta(job.eta_s)}` : "";
  const pct = Math.round((job.progress || 0) * 100);
  const messages = {
    queued: () => "Queued: waiting for the engine…",
    running: () => `Step ${job.step} / ${job.total_steps} (${pct} %)${loss}${eta}`,
    succeeded: () => `Done: ${job.step} / ${job.total_steps} steps (100 %) in ${job.result.training_seconds} s${loss}`,
    failed: () => `Training failed: ${job.error}`,
    cancelled: () => `Cancelled at step ${job.step} / ${job.total_steps}.`,
  };
  text.textContent = messages[job.status]();
  const ended = ["succeeded", "failed", "cancelled"].includes(job.status);
  cancelBtn.hidden = ended;
  if (job.status === "succeeded") {
    const p = new URLSearchParams({ lora: `${job.result.file}:1`, prompt: `${job.params.trigger_word} ` });
    useLink.href = `/generate?${p}`;
    useLink.hidden = false;
    const sample = document.getElementById("sample");
    sample.src = safeThumbnail(job.result.thumbnail) || "";
    sample.hidden = false;
  }
  if (ended && source) { source.close(); source = null; }
}

function follow(id) {
  jobId = id;
  source = new EventSource(`/jobs/${id}/events`);
  for (const name of ["queued", "running", "succeeded", "failed", "cancelled"]) {
    source.addEventListener(name, (ev) => render(JSON.parse(ev.data)));
  }
  source.onerror = async () => {  // the stream broke: fall back to one read of the job
    try { render(await api("GET", `/jobs/${id}`)); } catch (err) { showError(errorBox, err); }
  };
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const problem = checkFiles() || (!form.elements.name.checkValidity() &&
    "Give the LoRA a name: letters, digits, _ . - (starting with a letter or digit).");
  if (problem) { showError(errorBox, new Error(problem)); return; }
  showError(errorBox, null);
  const data = new FormData();
  for (const f of input.files) data.append("images", f);
  for (const el of form.querySelectorAll("input[name]:not([type=file]), select[name]")) {
    if (el.type === "checkbox") data.append(el.name, el.checked ? "true" : "false");
    else if (el.value !== "") data.append(el.name, el.value);
  }
  const button = document.getElementById("train-btn");
  button.disabled = true;
  try {
    const started = await api("POST", "/train-lora", data);
    card.hidden = false;
    useLink.hidden = true;
    document.getElementById("sample").hidden = true;
    render(started.job);
    follow(started.job_id);
  } catch (err) {
    showError(errorBox, err);
  } finally {
    button.disabled = false;
  }
});

cancelBtn.addEventListener("click", async () => {
  if (!jobId) return;
  try { render(await api("POST", `/jobs/${jobId}/cancel`)); } catch (err) { showError(errorBox, err); }
});
