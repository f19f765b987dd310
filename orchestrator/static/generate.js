// /generate: prompt, LoRA stack with strength sliders, advanced settings; each click starts a
// generation job whose live preview, queue place and steps show in a batch of its own, above
// the earlier batches of this visit.
import {
  api, el, followJob, loraMeta, safeThumbnail, showError, TERMINAL,
} from "./lib.js";
import { engineReady, refreshJobsBadge } from "./shell.js";
import { sourcePanel } from "./source.js";

const form = document.getElementById("gen-form");
const stack = document.getElementById("lora-stack");
const cards = document.getElementById("lora-cards");
const search = document.getElementById("lora-search");
const batches = document.getElementById("batches");
const errorBox = document.getElementById("gen-error");
const status = document.getElementById("gen-status");
const loras = new Map();  // file -> listing entry
const running = new Set();  // cancel functions of this page's unfinished batches
// A preview deployment only generates, and keeps nothing: no LoRAs, no jobs, no deleting.
const preview = document.body.dataset.mode === "preview";
const source = sourcePanel({ preview, errorBox });

function addLora(file, strength = 1.0) {
  if (!file || stack.querySelector(`li[data-file="${CSS.escape(file)}"]`)) return;
  const lora = loras.get(file);
  const trigger = lora ? loraMeta(lora, "trigger_word") : "";
  const name = file.replace(/\.safetensors$/, "");
  const id = `s-${stack.children.length}-${Date.now()}`;
  const out = el("output", { for: id, text: Number(strength).toFixed(2) });
  const slider = el("input", { type: "range", id, min: "-2", max: "2", step: "0.05",
                               value: String(strength), "aria-label": `Strength of ${name}` });
  slider.addEventListener("input", () => { out.textContent = Number(slider.value).toFixed(2); });
  const li = el("li", { "data-file": file },
    el("span", {}, el("strong", { text: name }),
       trigger ? el("span", { class: "trigger", text: ` · trigger: ${trigger}` }) : null),
    el("button", { type: "button", class: "secondary", "aria-label": `Remove ${name}`,
                   text: "Remove", onclick: () => li.remove() }),
    el("span", { class: "slider" }, el("label", { for: id, text: "Strength" }), slider, out));
  stack.append(li);
}

function loraCard(lora) {
  const trigger = loraMeta(lora, "trigger_word");
  const thumb = safeThumbnail(lora.metadata && lora.metadata["loramint.thumbnail"]);
  return el("li", { class: "card-item", "data-file": lora.file,
                    "data-search": `${lora.name} ${trigger}`.toLowerCase() },
    thumb ? el("img", { src: thumb, alt: "" }) : el("span", { class: "no-thumb", "aria-hidden": "true" }),
    el("span", { class: "card-text" }, el("strong", { text: lora.name }),
       el("small", { text: trigger ? `trigger: ${trigger}` : "no trigger word" })),
    el("button", { type: "button", class: "secondary", text: "Add", "aria-label": `Add ${lora.name}`,
                   onclick: () => addLora(lora.file, loraMeta(lora, "preferred_strength") || 1) }));
}

async function loadLoras() {
  const data = await api("GET", "/loras");
  for (const lora of data.loras) loras.set(lora.file, lora);
  cards.replaceChildren(...data.loras.map(loraCard));
  document.getElementById("lora-none").hidden = data.loras.length > 0;
}

search.addEventListener("input", () => {
  const q = search.value.trim().toLowerCase();
  for (const card of cards.children) card.hidden = q !== "" && !card.dataset.search.includes(q);
});

function showDefaults(health) {
  const d = health.defaults || {};
  const hint = (name, value) => {
    if (value !== undefined) form.elements[name].placeholder = `${value} (default)`;
  };
  hint("steps", d.steps); hint("guidance_scale", d.guidance_scale);
  hint("width", d.width); hint("height", d.height);
}

const FIELDS = ["prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height"];

// Put settings in the form: from the address (links from other pages) or an image's Reuse.
function fill(get, loraSpecs) {
  for (const key of FIELDS) {
    const v = get(key);
    form.elements[key].value = v === undefined || v === null ? "" : v;
  }
  if (["seed", "steps", "guidance_scale", "width", "height"].some((k) => form.elements[k].value !== "")) {
    document.getElementById("advanced").open = true;
  }
  stack.replaceChildren();
  for (const [file, strength] of loraSpecs) addLora(file, strength);
}

function prefill() {
  const q = new URLSearchParams(location.search);
  if (![...q.keys()].length) return;
  fill((k) => q.get(k) ?? undefined, q.getAll("lora").map((spec) => {
    const [file, strength] = spec.split(":");
    return [file, strength === undefined ? 1.0 : Number(strength)];
  }));
  if (q.has("num_images")) form.elements.num_images.value = q.get("num_images");
  if (q.has("init_image")) {
    const file = q.get("init_image");
    source.use(file, `/images/${encodeURIComponent(file)}`);
  }
}

function reuse(p) {
  fill((k) => p[k], (p.loras || []).map((l) => [l.file, l.strength]));
  form.scrollIntoView({ behavior: "smooth" });
  form.elements.prompt.focus();
  status.textContent = "The form now holds that image's settings.";
}

// "Use as input" and "Upscale" on a result: its file (a data URL in a preview) goes on.
function useAsInput(im) {
  source.use(preview ? im.url : im.file, im.url);
  document.getElementById("start-from").scrollIntoView({ behavior: "smooth" });
  status.textContent = "That image is now the picture to start from.";
}

async function upscale(im, factor) {
  showError(errorBox, null);
  const p = im.parameters;
  const b = { prompt: p.prompt || "", negative_prompt: p.negative_prompt || "", seed: im.seed,
              loras: p.loras || [], init_image: preview ? im.url : im.file, upscale: factor };
  if (!b.prompt.trim()) b.prompt = "a picture";  // an upload of yours has no prompt
  const label = `×${factor}: ${b.prompt}`;
  try {
    if (preview) await generateInline(label, b);
    else startBatch(await api("POST", "/generate?async=true", b), label);
  } catch (err) { showError(errorBox, err); }
}

function body() {
  const b = { prompt: form.elements.prompt.value, negative_prompt: form.elements.negative_prompt.value };
  for (const key of ["seed", "steps", "width", "height", "num_images"]) {
    if (form.elements[key].value !== "") b[key] = parseInt(form.elements[key].value, 10);
  }
  if (form.elements.guidance_scale.value !== "") b.guidance_scale = parseFloat(form.elements.guidance_scale.value);
  b.loras = [...stack.children].map((li) => ({
    file: li.dataset.file, strength: parseFloat(li.querySelector("input[type=range]").value) }));
  const from = source.fields();
  if (from instanceof Error) throw from;
  return { ...b, ...from };
}

function imageFigure(im, seconds, onDeleted) {
  const label = `${im.parameters.prompt} (seed ${im.seed})`;
  const img = el("img", { src: im.url, alt: `Generated: ${label}` });
  // Browsers won't open a data: URL (a preview's inline image) in a tab of its own.
  const fig = el("figure", { "data-file": im.file },
    preview ? img : el("a", { href: im.url, target: "_blank", rel: "noopener" }, img),
    el("figcaption", { text: `seed ${im.seed} · ${seconds} s` }));
  const del = async () => {
    if (!confirm(`Delete this image (seed ${im.seed})?`)) return;
    try { await api("DELETE", im.url); fig.remove(); onDeleted(); } catch (err) { showError(errorBox, err); }
  };
  const button = (text, label, onclick) => el("button", { type: "button", class: "secondary", text,
                                                         "aria-label": `${label} image seed ${im.seed}`, onclick });
  fig.append(el("div", { class: "row actions" },
    el("a", { class: "button secondary", href: im.url, download: im.file, text: "Download",
              "aria-label": `Download image seed ${im.seed}` }),
    button("Reuse", "Reuse the settings of", () => reuse(im.parameters)),
    button("Use as input", "Start from", () => useAsInput(im)),
    button("Upscale ×1.5", "Upscale by 1.5", () => upscale(im, 1.5)),
    button("×2", "Upscale by 2", () => upscale(im, 2)),
    preview ? null : el("button", { type: "button", class: "danger", text: "Delete",
                                    "aria-label": `Delete image seed ${im.seed}`, onclick: del })));
  return fig;
}

function describe(job) {
  if (job.status === "queued") {
    return job.queue_position ? `Queued: ${job.queue_position === 1 ? "next" : `number ${job.queue_position}`} in line…`
      : "Queued…";
  }
  if (job.status === "running") return `Step ${job.step} of ${job.total_steps}`;
  if (job.status === "failed") return `Failed: ${job.error}`;
  if (job.status === "cancelled") return "Stopped: nothing was saved.";
  return `Done in ${job.result.seconds} s`;
}

function startBatch(started, prompt) {
  const preview = el("img", { class: "preview", alt: `Live preview of “${prompt}”`, hidden: true });
  const bar = el("progress", { max: "1", value: "0", "aria-label": "Steps done" });
  const text = el("p", { class: "batch-status", text: describe(started.job) });
  const cancel = el("button", { type: "button", class: "danger", text: "Stop",
                                "aria-label": `Stop generating “${prompt}”` });
  const images = el("div", { class: "gallery" });
  const section = el("section", { class: "card batch", "aria-label": `Batch: ${prompt}` },
    el("h2", { text: prompt }), el("div", { class: "row" }, text, cancel), bar, preview, images);
  batches.prepend(section);
  let stopFollowing = null;
  const stop = async () => {
    cancel.disabled = true;
    text.textContent = "Stopping…";
    try { await api("POST", `/jobs/${started.job_id}/cancel`); } catch (err) { showError(errorBox, err); }
  };
  cancel.addEventListener("click", stop);
  running.add(stop);
  let last = "";
  stopFollowing = followJob(started.job_id, (job) => {
    if (!(cancel.disabled && job.status === "running")) text.textContent = describe(job);
    bar.value = job.progress || 0;
    if (job.preview) { preview.src = job.preview; preview.hidden = false; }
    if (job.status !== last) {  // announce changes of state, not every step
      last = job.status;
      status.textContent = `“${prompt}”: ${describe(job)}`;
    }
    if (TERMINAL.includes(job.status)) {
      running.delete(stop);
      cancel.remove();
      bar.remove();
      preview.remove();
      refreshJobsBadge();
      if (job.status === "succeeded") {
        const onDeleted = () => { if (!images.children.length) section.remove(); };
        images.replaceChildren(...job.result.images.map((im) => imageFigure(im, job.result.seconds, onDeleted)));
      }
    }
  });
  return stopFollowing;
}

// Preview: one request that answers with the images themselves.
async function generateInline(prompt, request = body()) {
  const text = el("p", { class: "batch-status", text: "Generating…" });
  const images = el("div", { class: "gallery" });
  const section = el("section", { class: "card batch", "aria-label": `Batch: ${prompt}` },
    el("h2", { text: prompt }), text, images);
  batches.prepend(section);
  status.textContent = `“${prompt}”: generating`;
  try {
    const result = await api("POST", "/generate", request);
    text.textContent = `Done in ${result.seconds} s`;
    images.replaceChildren(...result.images.map((im) => imageFigure(im, result.seconds)));
  } catch (err) {
    section.remove();
    throw err;
  }
  status.textContent = `“${prompt}”: ${text.textContent}`;
}

async function generate() {
  showError(errorBox, null);
  const prompt = form.elements.prompt.value.trim();
  if (!prompt) {
    showError(errorBox, new Error("Type a prompt first."));
    form.elements.prompt.focus();
    return;
  }
  const button = document.getElementById("generate-btn");
  button.disabled = true;
  try {
    if (preview) {
      await generateInline(prompt);
    } else {
      const started = await api("POST", "/generate?async=true", body());
      startBatch(started, prompt);
      refreshJobsBadge();
    }
  } catch (err) {
    showError(errorBox, err);
  } finally {
    button.disabled = false;
  }
}

form.addEventListener("submit", (ev) => { ev.preventDefault(); generate(); });
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); generate(); }
  else if (ev.key === "Escape" && running.size && !document.querySelector("dialog[open]")) {
    for (const stop of running) stop();
  }
});

prefill();
engineReady.then(async (health) => {
  showDefaults(health);
  if (preview) return;
  try { await loadLoras(); } catch (err) { showError(errorBox, err); }
  // A link from "Use this LoRA" may name a LoRA before the list has loaded: show its trigger.
  for (const li of stack.children) {
    const trig = loraMeta(loras.get(li.dataset.file) || {}, "trigger_word");
    if (trig && !li.querySelector(".trigger")) {
      li.firstChild.append(el("span", { class: "trigger", text: ` · trigger: ${trig}` }));
    }
  }
});
