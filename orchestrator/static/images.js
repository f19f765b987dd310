// /my-images: newest first, a page at a time, with search; each card shows the date and the
// LoRAs used; a lightbox (arrow keys move) with the parameters as a table, reuse, download
// and delete; and selecting several to delete at once, or to train a LoRA from (1-5 of them,
// read by the engine from your gallery).
import { api, el, formatDate, reuseUrl, showError } from "./lib.js";
import { engineReady } from "./shell.js";

const grid = document.getElementById("image-grid");
const dialog = document.getElementById("image-dialog");
const errorBox = document.getElementById("images-error");
const more = document.getElementById("more");
const selectToggle = document.getElementById("select-toggle");
const deleteSelected = document.getElementById("delete-selected");
const trainSelected = document.getElementById("train-selected");
const MAX_TRAINING_IMAGES = 5;
const PAGE = 30;
let images = [];
let cursor = null;
let query = "";
let current = -1;
let selecting = false;

function badges(p) {
  return el("ul", { class: "badges", "aria-label": "LoRAs used" },
    ...(p.loras || []).map((l) => el("li", { text: `${l.file.replace(/\.safetensors$/, "")} ${l.strength}` })));
}

function card(im, i) {
  const label = im.prompt || im.file;
  const box = el("input", { type: "checkbox", class: "pick", "aria-label": `Select ${label}`,
                            hidden: !selecting, onchange: updateSelection });
  return el("figure", { "data-file": im.file }, box,
    // In Select mode a click on the picture ticks it; otherwise it opens the lightbox.
    el("button", { type: "button", class: "thumb", "aria-label": `Open ${label}`,
                   onclick: () => (selecting ? tick(box) : open(i)) },
       el("img", { src: im.url, alt: label, loading: "lazy" })),
    el("figcaption", {}, el("span", { text: label }),
       el("time", { datetime: im.created, text: formatDate(im.created) }), badges(im.parameters)));
}

const PARAM_ROWS = [
  ["Prompt", "prompt"], ["Negative prompt", "negative_prompt"], ["Seed", "seed"], ["Steps", "steps"],
  ["Guidance", "guidance_scale"], ["Size", (p) => `${p.width}×${p.height}`], ["Sampler", "scheduler"],
  ["Model", "model"], ["LoRAs", (p) => (p.loras || []).map((l) => `${l.file} @ ${l.strength}`).join(", ") || "none"],
  ["Created", (p) => formatDate(p.created)],
];

function open(i) {
  current = i;
  const im = images[i];
  const p = im.parameters || {};
  document.getElementById("dialog-img").src = im.url;
  document.getElementById("dialog-img").alt = im.prompt || im.file;
  document.getElementById("dialog-title").textContent = im.prompt || im.file;
  document.querySelector("#dialog-params tbody").replaceChildren(...PARAM_ROWS.map(([name, key]) =>
    el("tr", {}, el("th", { scope: "row", text: name }),
       el("td", { text: String((typeof key === "function" ? key(p) : p[key]) ?? "") }))));
  document.getElementById("dialog-reuse").href = reuseUrl(p);
  document.getElementById("dialog-use").href = `/generate?${new URLSearchParams({ init_image: im.file })}`;
  const dl = document.getElementById("dialog-download");
  dl.href = im.url;
  dl.setAttribute("download", im.file);
  document.getElementById("dialog-prev").disabled = i === 0;
  document.getElementById("dialog-next").disabled = i === images.length - 1 && !cursor;
  if (!dialog.open) dialog.showModal();
}

async function step(delta) {
  if (current < 0) return;
  const next = current + delta;
  if (next >= images.length && cursor) await loadPage();
  if (next >= 0 && next < images.length) open(next);
}

async function loadPage(reset = false) {
  if (reset) { images = []; cursor = null; }
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (cursor) q.set("cursor", cursor);
  if (query) q.set("q", query);
  try {
    const data = await api("GET", `/images?${q}`);
    const start = images.length;
    images.push(...data.images);
    cursor = data.next_cursor;
    const cards = data.images.map((im, k) => card(im, start + k));
    if (reset) grid.replaceChildren(...cards); else grid.append(...cards);
    more.hidden = !cursor;
    const empty = document.getElementById("images-empty");
    empty.hidden = images.length > 0;
    if (!images.length && query) empty.textContent = `No images match “${query}”.`;
    document.getElementById("images-status").textContent = `${images.length} image(s) shown.`;
    showError(errorBox, null);
  } catch (err) { showError(errorBox, err); }
}

function picked() {
  return [...grid.querySelectorAll("input.pick:checked")].map((b) => b.closest("figure").dataset.file);
}

function tick(box) {
  box.checked = !box.checked;
  updateSelection();
}

function updateSelection() {
  const n = picked().length;
  deleteSelected.hidden = !selecting || n === 0;
  deleteSelected.textContent = `Delete ${n} selected`;
  trainSelected.hidden = !selecting || n === 0;
  trainSelected.disabled = n > MAX_TRAINING_IMAGES;
  trainSelected.textContent = n > MAX_TRAINING_IMAGES ? `Train from at most ${MAX_TRAINING_IMAGES} (${n} selected)`
    : `Train a LoRA from ${n} selected`;
}

async function remove(files) {
  const failed = [];
  for (const file of files) {
    const im = images.find((x) => x.file === file);
    try { await api("DELETE", im.url); } catch (err) { failed.push(`${file}: ${err.message}`); }
  }
  showError(errorBox, failed.length ? new Error(`Not deleted: ${failed.join("; ")}`) : null);
  await loadPage(true);
}

selectToggle.addEventListener("click", () => {
  selecting = !selecting;
  selectToggle.setAttribute("aria-pressed", String(selecting));
  selectToggle.textContent = selecting ? "Done selecting" : "Select";
  for (const b of grid.querySelectorAll("input.pick")) { b.hidden = !selecting; b.checked = false; }
  updateSelection();
});
deleteSelected.addEventListener("click", async () => {
  const files = picked();
  if (files.length && confirm(`Delete ${files.length} image(s)? This can't be undone.`)) await remove(files);
});
trainSelected.addEventListener("click", () => {
  const q = new URLSearchParams();
  for (const file of picked()) q.append("gallery", file);
  location.assign(`/train-lora?${q}`);
});
document.getElementById("images-search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  query = document.getElementById("q").value.trim();
  loadPage(true);
});
more.addEventListener("click", () => loadPage());
document.getElementById("dialog-prev").addEventListener("click", () => step(-1));
document.getElementById("dialog-next").addEventListener("click", () => step(1));
dialog.addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowLeft") { ev.preventDefault(); step(-1); }
  if (ev.key === "ArrowRight") { ev.preventDefault(); step(1); }
});
document.getElementById("dialog-delete").addEventListener("click", async () => {
  const im = images[current];
  if (!im || !confirm(`Delete ${im.file}?`)) return;
  dialog.close();
  await remove([im.file]);
});
document.getElementById("dialog-close").addEventListener("click", () => dialog.close());
engineReady.then(() => loadPage(true));
