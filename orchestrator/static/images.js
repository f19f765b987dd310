// /my-images: newest-first grid; a dialog with the full image, its parameters, reuse,
// download and delete.
"use strict";

const grid = document.getElementById("image-grid");
const dialog = document.getElementById("image-dialog");
const errorBox = document.getElementById("images-error");
let current = null;

function reuseUrl(p) {
  const q = new URLSearchParams();
  for (const key of ["prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height"]) {
    if (p[key] !== undefined && p[key] !== null && p[key] !== "") q.set(key, p[key]);
  }
  for (const l of p.loras || []) q.append("lora", `${l.file}:${l.strength}`);
  return `/generate?${q}`;
}

function open(image) {
  current = image;
  document.getElementById("dialog-img").src = image.url;
  document.getElementById("dialog-img").alt = image.prompt || image.file;
  document.getElementById("dialog-title").textContent = image.prompt || image.file;
  document.getElementById("dialog-params").textContent = image.parameters_text;
  document.getElementById("dialog-reuse").href = reuseUrl(image.parameters);
  const dl = document.getElementById("dialog-download");
  dl.href = image.url;
  dl.setAttribute("download", image.file);
  dialog.showModal();
}

async function load() {
  try {
    const data = await api("GET", "/images");
    document.getElementById("images-empty").hidden = data.images.length > 0;
    grid.replaceChildren(...data.images.map((im) => el("figure", { "data-file": im.file },
      el("button", { type: "button", class: "thumb", "aria-label": `Open ${im.prompt || im.file}`,
                     onclick: () => open(im) },
         el("img", { src: im.url, alt: im.prompt || im.file, loading: "lazy" })),
      el("figcaption", { text: `${im.prompt || ""} · seed ${im.seed}` }))));
  } catch (err) { showError(errorBox, err); }
}

document.getElementById("dialog-delete").addEventListener("click", async () => {
  if (!current || !confirm(`Delete ${current.file}?`)) return;
  try {
    await api("DELETE", current.url);
    dialog.close();
    await load();
  } catch (err) { showError(errorBox, err); dialog.close(); }
});
document.getElementById("dialog-close").addEventListener("click", () => dialog.close());
load();
