// /my-loras: table with download (diffusers and kohya), delete, "use", and a metadata view.
"use strict";

const body = document.querySelector("#lora-table tbody");
const errorBox = document.getElementById("loras-error");
const dialog = document.getElementById("meta-dialog");

function meta(lora, key) {
  const v = lora.metadata && lora.metadata[`loramint.${key}`];
  if (v === undefined) return "";
  try { return JSON.parse(v); } catch (e) { return v; }
}

function showMeta(lora) {
  document.getElementById("meta-title").textContent = `Metadata of ${lora.name}`;
  const shown = { ...lora.metadata };
  // Anyone can write a LoRA's header: only our own kind of thumbnail, a PNG data URL, is shown.
  const thumb = safeThumbnail(shown["loramint.thumbnail"]);
  delete shown["loramint.thumbnail"];
  document.getElementById("meta-json").textContent = JSON.stringify(shown, null, 2);
  const img = document.getElementById("meta-thumb");
  img.hidden = !thumb;
  if (thumb) img.src = thumb;
  dialog.showModal();
}

function row(lora) {
  const trigger = meta(lora, "trigger_word");
  const use = new URLSearchParams({ lora: `${lora.file}:1` });
  if (trigger) use.set("prompt", `${trigger} `);
  const del = async () => {
    if (!confirm(`Delete ${lora.name}?`)) return;
    try { await api("DELETE", lora.url); await load(); } catch (err) { showError(errorBox, err); }
  };
  return el("tr", { "data-file": lora.file },
    el("th", { scope: "row", text: lora.name }),
    el("td", { text: formatBytes(lora.size) }),
    el("td", { text: new Date(lora.created).toLocaleString() }),
    el("td", { text: meta(lora, "base_model") || "–" }),
    el("td", { text: trigger || "–" }),
    el("td", { text: meta(lora, "rank") || "–" }),
    el("td", { text: meta(lora, "steps") || "–" }),
    el("td", {}, el("div", { class: "row" },
      el("a", { class: "button", href: `/generate?${use}`, text: "Use" }),
      el("a", { class: "button secondary", href: lora.url, download: lora.file, text: "Download" }),
      el("a", { class: "button secondary", href: `${lora.url}&format=kohya`, text: "Kohya" }),
      el("button", { type: "button", class: "secondary", text: "Metadata", onclick: () => showMeta(lora) }),
      el("button", { type: "button", class: "danger", text: "Delete", onclick: del }))));
}

async function load() {
  try {
    const data = await api("GET", "/loras");
    document.getElementById("loras-empty").hidden = data.loras.length > 0;
    body.replaceChildren(...data.loras.map(row));
  } catch (err) { showError(errorBox, err); }
}

document.getElementById("meta-close").addEventListener("click", () => dialog.close());
load();
