// /my-loras: cards (sample, name, trigger word, base model, type, steps, rank) with use,
// download, kohya (not for a DoRA), details and delete; a details view that reads as sections and lets you edit the
// trigger word, description and preferred strength; and importing a file.
import {
  api, el, formatBytes, formatDate, loraMeta, safeThumbnail, showError, useLoraUrlOf,
} from "./lib.js";
import { engineReady } from "./shell.js";

const list = document.getElementById("lora-cards");
const errorBox = document.getElementById("loras-error");
const dialog = document.getElementById("meta-dialog");
const editForm = document.getElementById("edit-form");
let editing = null;

const GROUPS = [
  ["Training", ["trigger_word", "description", "preferred_strength", "preset", "changed_from_preset",
                "adapter", "steps", "rank", "alpha", "learning_rate", "resolution", "seed",
                "training_seconds", "created"]],
  ["Dataset", ["image_count", "captions", "image_sha256"]],
  ["Base model", ["base_model", "family"]],
];

function show(value) {
  if (Array.isArray(value)) return value.join("\n");
  if (value && typeof value === "object") {  // changed_from_preset: field: value, a line each
    return Object.entries(value).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("\n") || "none";
  }
  return value === null || value === undefined ? "" : String(value);
}

function metaView(lora) {
  const shown = new Set(["loramint.thumbnail"]);
  const sections = GROUPS.map(([title, keys]) => {
    const rows = keys.filter((k) => loraMeta(lora, k) !== "").map((k) => {
      shown.add(`loramint.${k}`);
      return el("tr", {}, el("th", { scope: "row", text: k.replaceAll("_", " ") }),
                el("td", { text: show(loraMeta(lora, k)) }));
    });
    return rows.length ? el("section", {}, el("h3", { text: title }),
      el("table", { class: "params" }, el("tbody", {}, ...rows))) : null;
  });
  const raw = Object.fromEntries(Object.entries(lora.metadata || {}).filter(([k]) => !shown.has(k)));
  const rawBox = el("details", {}, el("summary", { text: `Other keys (${Object.keys(raw).length})` }),
    el("pre", { text: JSON.stringify(raw, null, 2) }));
  return [...sections.filter(Boolean), rawBox];
}

function openDetails(lora) {
  editing = lora;
  document.getElementById("meta-title").textContent = lora.name;
  const thumb = safeThumbnail(lora.metadata && lora.metadata["loramint.thumbnail"]);
  const img = document.getElementById("meta-thumb");
  img.hidden = !thumb;
  if (thumb) img.src = thumb;
  editForm.elements.trigger_word.value = loraMeta(lora, "trigger_word");
  editForm.elements.description.value = loraMeta(lora, "description");
  editForm.elements.preferred_strength.value = loraMeta(lora, "preferred_strength") || "";
  document.getElementById("edit-status").textContent = "";
  showError(document.getElementById("edit-error"), null);
  document.getElementById("meta-groups").replaceChildren(...(lora.error ? [el("p", { class: "error", text: lora.error })] : metaView(lora)));
  dialog.showModal();
}

function loraCard(lora) {
  const trigger = loraMeta(lora, "trigger_word");
  const thumb = safeThumbnail(lora.metadata && lora.metadata["loramint.thumbnail"]);
  const facts = [["Trigger", trigger || "–"], ["Base model", loraMeta(lora, "base_model") || "–"],
                 ["Type", lora.adapter === "dora" ? "DoRA" : "LoRA"],
                 ["Steps", loraMeta(lora, "steps") || "–"], ["Rank", loraMeta(lora, "rank") || "–"],
                 ["Size", formatBytes(lora.size)], ["Created", formatDate(lora.created)]];
  const del = async () => {
    if (!confirm(`Delete ${lora.name}? This can't be undone.`)) return;
    try { await api("DELETE", lora.url); await load(); } catch (err) { showError(errorBox, err); }
  };
  const n = lora.name;
  return el("li", { class: "card lora-card", "data-file": lora.file },
    thumb ? el("img", { src: thumb, alt: `Sample made with ${n}` }) : el("span", { class: "no-thumb", "aria-hidden": "true" }),
    el("h2", { text: n }),
    loraMeta(lora, "description") ? el("p", { text: loraMeta(lora, "description") }) : null,
    el("dl", {}, ...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })])),
    el("div", { class: "row" },
      el("a", { class: "button", href: useLoraUrlOf(lora), text: "Use", "aria-label": `Use ${n}` }),
      el("a", { class: "button secondary", href: lora.url, download: lora.file, text: "Download",
                "aria-label": `Download ${n}` }),
      // kohya's format has no place for DoRA's magnitudes (the engine answers 422).
      lora.adapter === "dora" ? null : el("a", { class: "button secondary", href: `${lora.url}&format=kohya`,
        text: "Download for A1111/ComfyUI", "aria-label": `Download ${n} for A1111 or ComfyUI (kohya format)` }),
      el("button", { type: "button", class: "secondary", text: "Details",
                     "aria-label": `Details of ${n}`, onclick: () => openDetails(lora) }),
      el("button", { type: "button", class: "danger", text: "Delete", "aria-label": `Delete ${n}`, onclick: del })),
    loraMeta(lora, "job_id") ? continueForm(lora) : null);
}

// More steps on a LoRA trained here: the job opens on the train page.
function continueForm(lora) {
  const id = `more-${lora.name}`;
  const steps = el("input", { id, type: "number", min: "1", max: "5000", required: "",
    value: String(Math.max(100, Math.round((Number(loraMeta(lora, "steps")) || 400) / 2))) });
  const go = async (ev) => {
    ev.preventDefault();
    const data = new FormData();
    data.append("steps", steps.value);
    try {
      const started = await api("POST", `/loras/${encodeURIComponent(lora.file)}/continue`, data);
      location.href = `/train-lora?job=${started.job_id}`;
    } catch (err) { showError(errorBox, err); }
  };
  return el("details", { class: "continue" }, el("summary", { text: "Continue training" }),
    el("form", { onsubmit: go }, el("label", { for: id, text: "More steps" }), steps,
      el("button", { type: "submit", text: "Continue", "aria-label": `Continue training ${lora.name}` })));
}

async function load() {
  try {
    const data = await api("GET", "/loras");
    document.getElementById("loras-empty").hidden = data.loras.length > 0;
    list.replaceChildren(...data.loras.map(loraCard));
    showError(errorBox, null);
    return data.loras;
  } catch (err) { showError(errorBox, err); return []; }
}

editForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = editForm.elements, patch = {};
  if (f.trigger_word.value.trim()) patch.trigger_word = f.trigger_word.value.trim();
  patch.description = f.description.value;
  if (f.preferred_strength.value !== "") patch.preferred_strength = parseFloat(f.preferred_strength.value);
  try {
    const updated = await api("PATCH", `/loras/${encodeURIComponent(editing.file)}`, patch);
    document.getElementById("edit-status").textContent = "Saved.";
    showError(document.getElementById("edit-error"), null);
    editing = updated;
    document.getElementById("meta-groups").replaceChildren(...metaView(updated));
    await load();
  } catch (err) { showError(document.getElementById("edit-error"), err); }
});

document.getElementById("import-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target, status = document.getElementById("import-status");
  if (!form.elements.file.files.length) { status.textContent = "Choose a .safetensors file first."; return; }
  const data = new FormData();
  data.append("file", form.elements.file.files[0]);
  if (form.elements.name.value.trim()) data.append("name", form.elements.name.value.trim());
  data.append("overwrite", form.elements.overwrite.checked ? "true" : "false");
  status.textContent = "Importing…";
  try {
    const out = await api("POST", "/loras", data);
    status.textContent = `Imported ${out.file}.`;
    form.reset();
    await load();
  } catch (err) {
    status.textContent = err.code === "conflict"
      ? "You already have a LoRA of that name: give another name, or tick “Replace one of the same name”."
      : err.message;
  }
});

document.getElementById("meta-close").addEventListener("click", () => dialog.close());
engineReady.then(load);
