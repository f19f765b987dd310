// /train-lora: choose what you teach (train_presets.js), pick or drop 1-5 images, caption each
// (by template, by hand or Auto-caption), mask each (train_masks.js),
// start, and follow the job live: phase, steps, time left, loss chart and sample images, then
// the report card (report.js) with its actions, and Resume for a run cut short. The page
// reattaches to your running training job when it is opened again.
import {
  api, el, followJob, formatDuration, safeThumbnail, showError, TERMINAL, useLoraUrl,
} from "./lib.js";
import { drawReport } from "./report.js";
import { trainMasks } from "./train_masks.js";
import { trainPresets } from "./train_presets.js";
import { engineReady, refreshJobsBadge } from "./shell.js";

const form = document.getElementById("train-form");
const input = document.getElementById("images");
const drop = document.getElementById("drop");
const thumbs = document.getElementById("thumbs");
const template = document.getElementById("caption-template");
const trigger = document.getElementById("trigger_word");
const errorBox = document.getElementById("train-error");
const captionStatus = document.getElementById("caption-status");
const card = document.getElementById("progress-card");
const bar = document.getElementById("progress");
const text = document.getElementById("progress-text");
const cardPlan = document.getElementById("card-plan");  // on a GPU: the memory settings
const warning = document.getElementById("progress-warning");  // steps suddenly slow
const announce = document.getElementById("progress-announce");
const cancelBtn = document.getElementById("cancel-btn");
const useLink = document.getElementById("use-lora");
const resumeBtn = document.getElementById("resume-btn");
const reportBox = document.getElementById("report");
const saved = document.getElementById("saved-note");
const ALLOWED = ["image/png", "image/jpeg", "image/webp"];
// {file (an upload) or gallery (one of your images, by name), name, url, caption: <textarea>,
// fromTemplate: bool}; gallery images first, as the engine orders them.
const chosen = [];
let jobId = null;
let stopFollowing = null;

const triggerWord = () => trigger.value.trim() || "ohwx";
// Each image's mask of what to learn (train_masks.js); item.mask is its PNG data URL.
const masks = trainMasks({ chosen, appendImage: (data, item) => appendImage(data, item),
  redraw: () => drawThumbs(), errorBox, status: captionStatus });
const templated = () => template.value.replaceAll("{trigger}", triggerWord());
const presets = trainPresets({ form, template, retemplate: () => retemplate(), errorBox,
  count: () => chosen.length || 3, masked: () => chosen.some((item) => item.mask) });

function addFiles(files) {
  const problems = [];
  for (const file of files) {
    if (!ALLOWED.includes(file.type)) { problems.push(`${file.name} is not a PNG, JPEG or WEBP image.`); continue; }
    if (chosen.length >= 5) { problems.push("At most 5 images: the rest were left out."); break; }
    chosen.push({ file, name: file.name, url: URL.createObjectURL(file), caption: null, fromTemplate: true });
  }
  showError(errorBox, problems.length ? new Error(problems.join(" ")) : null);
  drawThumbs();
}

function drawThumbs() {
  thumbs.replaceChildren(...chosen.map((item, i) => {
    const id = `caption-${i}`;
    if (!item.caption) {
      item.caption = el("textarea", { id, rows: "2", maxlength: "4000" });
      item.caption.value = templated();
      item.caption.addEventListener("input", () => { item.fromTemplate = false; });
    }
    item.caption.id = id;
    const remove = () => { if (item.file) URL.revokeObjectURL(item.url); chosen.splice(i, 1); drawThumbs(); };
    return el("li", {},
      masks.view(item, i),
      el("div", { class: "caption-box" },
        el("label", { for: id, text: `Caption of ${item.name}` }), item.caption),
      el("button", { type: "button", class: "secondary", text: "Remove",
                     "aria-label": `Remove ${item.name}`, onclick: remove }));
  }));
  presets.refresh();
}

function appendImage(data, item) {
  if (item.gallery) data.append("gallery", item.gallery);
  else data.append("images", item.file);
}

// "Train a LoRA from these" on /my-images: the chosen images of your gallery, by name.
function addGallery(names) {
  for (const name of names.slice(0, 5)) {
    chosen.push({ gallery: name, name, url: `/images/${encodeURIComponent(name)}`, caption: null, fromTemplate: true });
  }
  drawThumbs();
}

function retemplate() {
  for (const item of chosen) if (item.fromTemplate && item.caption) item.caption.value = templated();
}

input.addEventListener("change", () => { addFiles([...input.files]); input.value = ""; });
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (ev) => { ev.preventDefault(); drop.classList.add("over"); });
}
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  addFiles([...ev.dataTransfer.files]);
});
template.addEventListener("input", retemplate);
addGallery(new URLSearchParams(location.search).getAll("gallery"));
trigger.addEventListener("input", retemplate);

document.getElementById("auto-caption").addEventListener("click", async (ev) => {
  if (!chosen.length) { showError(errorBox, new Error("Choose images first, then Auto-caption.")); return; }
  const data = new FormData();
  for (const item of chosen) appendImage(data, item);
  data.append("trigger_word", triggerWord());
  ev.target.disabled = true;
  captionStatus.textContent = "Writing captions…";
  try {
    const out = await api("POST", "/caption", data);
    out.captions.forEach((c, i) => { chosen[i].caption.value = c; chosen[i].fromTemplate = false; });
    captionStatus.textContent = `Captions written by ${out.captioner}. Edit them as you like.`;
    showError(errorBox, null);
  } catch (err) {
    captionStatus.textContent = "";
    showError(errorBox, err);
  } finally { ev.target.disabled = false; }
});

function showLine(el, words) {
  el.textContent = words || "";
  el.hidden = !words;
}

function phaseText(job) {
  const pct = Math.round((job.progress || 0) * 100);
  const loss = job.loss === null || job.loss === undefined ? "" : ` · loss ${job.loss.toFixed(4)}`;
  const left = job.eta_s === null || job.eta_s === undefined ? "" : ` · about ${formatDuration(job.eta_s)} left`;
  switch (job.status) {
    case "queued":
      return job.queue_position > 1 ? `Queued: ${job.queue_position - 1} job(s) ahead of this one.`
        : "Queued: starts when the engine is free.";
    case "failed": {
      const kept = job.cut_short && lastKept(job);  // the engine stopped, not the training
      return kept ? `The engine stopped at step ${job.step} of ${job.total_steps}; its checkpoint ` +
        `at step ${kept} is kept: Resume goes on from there.` : `Training failed: ${job.error}`;
    }
    case "cancelled": {
      const kept = lastKept(job);
      return `Cancelled at step ${job.step} of ${job.total_steps}; ` +
        (kept ? `its checkpoint at step ${kept} is kept: Resume goes on from there.` : "nothing was saved.");
    }
    case "succeeded":
      return `Done: ${job.total_steps} steps in ${formatDuration(job.result.training_seconds)}${loss}.`;
    default: break;
  }
  if (job.phase === "preparing") {
    const count = job.phase_total ? ` (${job.phase_step} of ${job.phase_total})` : "";
    return `Preparing: reading your images and drawing the model's own pictures to keep${count}…`;
  }
  if (job.phase === "sampling") {
    return `Step ${job.step} of ${job.total_steps}: drawing sample ${job.phase_step} of ${job.phase_total}${left}`;
  }
  if (job.phase === "judging") return `Step ${job.step} of ${job.total_steps}: scoring this checkpoint for the report card${left}`;
  if (job.phase === "saving") return "Saving: a last check, a sample and the file…";
  return `Step ${job.step} of ${job.total_steps} (${pct} %)${loss}${left}`;
}

function drawChart(history) {
  const svg = document.getElementById("loss-chart");
  if (history.length < 2) { svg.replaceChildren(); return; }
  const losses = history.map((p) => p[1]);
  const lo = Math.min(...losses), hi = Math.max(...losses), last = history[history.length - 1][0];
  const x = (s) => 4 + (292 * s) / last, y = (v) => 116 - (hi === lo ? 56 : (112 * (v - lo)) / (hi - lo));
  const points = history.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const ns = "http://www.w3.org/2000/svg";
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points);
  line.setAttribute("class", "loss-line");
  const title = document.createElementNS(ns, "title");
  title.textContent = `Loss from ${losses[0].toFixed(4)} to ${losses[losses.length - 1].toFixed(4)} by step ${last}`;
  svg.replaceChildren(title, line);
}

let samplesShown = -1;
function drawSamples(samples) {
  const list = document.getElementById("samples");
  document.getElementById("samples-empty").hidden = samples.length > 0;
  if (samplesShown === samples.length) return;
  samplesShown = samples.length;
  const prompts = [...new Set(samples.map((s) => s.prompt))];
  list.replaceChildren(...prompts.map((prompt) => el("li", {},
    el("small", { class: "sample-prompt", text: prompt }),
    el("ol", { class: "strip", "aria-label": `Samples of “${prompt}” by step` },
      ...samples.filter((s) => s.prompt === prompt).map((s) => {
        const src = safeThumbnail(s.image);
        return el("li", {}, src ? el("img", { src, alt: `Step ${s.step}: ${prompt}` }) : null,
          el("small", { text: `step ${s.step}` }));
      })))));
}

let lastAnnounced = "";
let currentJob = null;
function render(job) {
  // A late answer (Cancel's, sent while it ran) must not undo the end the events showed.
  const ended = (j) => j && TERMINAL.includes(j.status);
  if (currentJob && currentJob.id === job.id && ended(currentJob) && !ended(job)) return;
  currentJob = job;
  bar.value = job.progress || 0;
  if (!(cancelBtn.disabled && job.status === "running")) text.textContent = phaseText(job);
  const said = `${job.status}/${job.phase}`;
  if (said !== lastAnnounced) { lastAnnounced = said; announce.textContent = phaseText(job); }
  showLine(cardPlan, job.params.card_plan && `Memory: ${job.params.card_plan}.`);
  showLine(warning, job.warning && `Slow: ${job.warning}.`);
  drawChart(job.loss_history || []);
  drawSamples(job.samples || []);
  cancelBtn.hidden = ended(job);
  if (job.status === "succeeded") {
    const rec = job.report && job.report.recommended;
    useLink.href = rec && rec.step === job.total_steps
      ? useLoraUrl(job.result.file, "", rec.strength, rec.prompt)
      : useLoraUrl(job.result.file, job.params.trigger_word);
    useLink.hidden = false;
  }
  const kept = lastKept(job);
  resumeBtn.hidden = !(kept && (job.status === "cancelled" || job.cut_short));
  resumeBtn.textContent = `Resume from step ${kept}`;
  const reportKey = JSON.stringify([job.report, job.checkpoints.map((c) => c.saved_as)]);
  if (reportKey !== reportShown) { reportShown = reportKey; drawReport(job, reportBox, actions(job)); }
  if (ended(job)) refreshJobsBadge();
}

let reportShown = "";
const lastKept = (job) => (job.checkpoints || []).filter((c) => c.kept).map((c) => c.step).pop();

// The report card's buttons: save a checkpoint, continue the LoRA, train again.
function actions(job) {
  return {
    save: async (step, strength) => {
      try {
        const name = `${job.params.name}-step${step}`;
        const out = await api("POST", `/jobs/${job.id}/checkpoints/${step}/save`, { name, strength, overwrite: true });
        const prompt = (job.report.recommended || {}).prompt || job.params.trigger_word;
        saved.replaceChildren(`Saved as ${out.file}. `, el("a", {
          href: useLoraUrl(out.file, "", strength, prompt), text: "Use it" }));
        saved.hidden = false;
        // The grid's Keep column names it now (a finished job's events have ended).
        const point = job.checkpoints.find((c) => c.step === step);
        if (point) { point.saved_as = out.file; drawReport(job, reportBox, actions(job)); }
        return out;
      } catch (err) { showError(errorBox, err); return null; }
    },
    continue: async (steps) => {
      const data = new FormData();
      data.append("steps", String(steps));
      try {
        const started = await api("POST", `/loras/${encodeURIComponent(job.result.file)}/continue`, data);
        follow(started.job);
        history.replaceState(null, "", `?job=${started.job_id}`);
      } catch (err) { showError(errorBox, err); }
    },
    retrain: (settings) => {
      // The advice's changes filled in, where the user sees them (Advanced settings open).
      for (const [name, value] of Object.entries(settings)) {
        const field = form.elements[name];
        if (!field) continue;
        field.value = String(value);
        field.closest("details").open = true;
      }
      form.scrollIntoView();
      form.elements.name.focus();
    },
    draw: async (step, strength) => {
      try {
        const out = await api("POST", `/jobs/${job.id}/checkpoints/${step}/draw`, { strength: Number(strength) });
        const point = job.checkpoints.find((c) => c.step === step);
        if (point) point.grid = { ...point.grid, [out.strength]: out.picture };
        return out.picture;
      } catch (err) { showError(errorBox, err); return null; }
    },
  };
}

// "Use this LoRA" when the report recommends an earlier checkpoint: it is saved first.
useLink.addEventListener("click", async (ev) => {
  const job = currentJob;
  const rec = job && job.report && job.report.recommended;
  if (!rec || rec.step === job.total_steps) return;
  ev.preventDefault();
  const out = await actions(job).save(rec.step, rec.strength);
  if (out) location.href = useLoraUrl(out.file, "", rec.strength, rec.prompt);
});

resumeBtn.addEventListener("click", async () => {
  resumeBtn.disabled = true;
  try {
    const started = await api("POST", `/jobs/${jobId}/resume`);
    follow(started.job);
    refreshJobsBadge();
    history.replaceState(null, "", `?job=${started.job_id}`);
  } catch (err) { showError(errorBox, err); } finally { resumeBtn.disabled = false; }
});

function follow(job) {
  if (stopFollowing) stopFollowing();
  jobId = job.id;
  card.hidden = false;
  cancelBtn.disabled = false;
  useLink.hidden = true;
  saved.hidden = true;
  samplesShown = -1;
  reportShown = "";
  document.getElementById("progress-title").textContent = `Training ${job.params.name}`;
  render(job);
  stopFollowing = followJob(job.id, render);
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const problem = (!chosen.length && "Choose 1 to 5 images first.") || (!form.elements.name.checkValidity() &&
    "Give the LoRA a name: letters, digits, _ . - (starting with a letter or digit).");
  if (problem) { showError(errorBox, new Error(problem)); return; }
  showError(errorBox, null);
  const data = new FormData();
  for (const item of chosen) {
    appendImage(data, item);
    data.append("captions", item.caption.value.trim() || triggerWord());
  }
  await masks.append(data);
  for (const field of form.querySelectorAll("input[name]:not([type=file]), select[name]")) {
    if (field.type === "checkbox") data.append(field.name, field.checked ? "true" : "false");
    else if (field.type === "radio") { if (field.checked) data.append(field.name, field.value); }
    else if (field.value !== "") data.append(field.name, field.value);
  }
  const button = document.getElementById("train-btn");
  button.disabled = true;
  try {
    const started = await api("POST", "/train-lora", data);
    follow(started.job);
    refreshJobsBadge();
    history.replaceState(null, "", `?job=${started.job_id}`);
  } catch (err) {
    if (err.code === "conflict") {  // the name is taken: point at this page's own control
      err.message = `You already have a LoRA named “${form.elements.name.value}”. Choose another ` +
        "name, or tick “Replace an existing LoRA of this name” under Advanced settings.";
      document.getElementById("overwrite").closest("details").open = true;
    }
    showError(errorBox, err);
  } finally {
    button.disabled = false;
  }
});

cancelBtn.addEventListener("click", async () => {
  if (!jobId) return;
  cancelBtn.disabled = true;
  text.textContent = "Cancelling…";
  try { render(await api("POST", `/jobs/${jobId}/cancel`)); }
  catch (err) { cancelBtn.disabled = false; showError(errorBox, err); }
});

presets.refresh();
// Reopened: follow the job named in the address, else your running training job.
engineReady.then(async () => {
  try {
    const wanted = new URLSearchParams(location.search).get("job");
    const { jobs } = await api("GET", "/jobs");
    const mine = jobs.filter((j) => j.kind === "train-lora");
    const job = mine.find((j) => j.id === wanted) || mine.find((j) => !TERMINAL.includes(j.status));
    if (job) follow(job);
  } catch (err) { showError(errorBox, err); }
});
