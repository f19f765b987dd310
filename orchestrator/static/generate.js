// /generate: prompt + advanced settings + a stack of LoRAs with strength sliders.
"use strict";

const form = document.getElementById("gen-form");
const pick = document.getElementById("lora-pick");
const stack = document.getElementById("lora-stack");
const results = document.getElementById("results");
const busy = document.getElementById("gen-busy");
const errorBox = document.getElementById("gen-error");
const loras = new Map();  // file -> listing entry

function triggerOf(lora) {
  return (lora && lora.metadata && lora.metadata["loramint.trigger_word"]) || "";
}

function addLora(file, strength = 1.0) {
  if (!file || stack.querySelector(`li[data-file="${CSS.escape(file)}"]`)) return;
  const trigger = triggerOf(loras.get(file));
  const id = `s-${stack.children.length}-${Date.now()}`;
  const out = el("output", { for: id, text: Number(strength).toFixed(2) });
  const slider = el("input", { type: "range", id, min: "-2", max: "2", step: "0.05",
                               value: String(strength), "aria-label": `Strength of ${file}` });
  slider.addEventListener("input", () => { out.textContent = Number(slider.value).toFixed(2); });
  const li = el("li", { "data-file": file },
    el("span", {}, el("strong", { text: file.replace(/\.safetensors$/, "") }),
       trigger ? el("span", { class: "trigger", text: ` · trigger: ${trigger}` }) : null),
    el("button", { type: "button", class: "secondary", "aria-label": `Remove ${file}`,
                   text: "Remove", onclick: () => li.remove() }),
    el("span", { class: "slider" }, el("label", { for: id, text: "Strength" }), slider, out));
  stack.append(li);
}

async function loadLoras() {
  try {
    const data = await api("GET", "/loras");
    for (const lora of data.loras) {
      loras.set(lora.file, lora);
      const trig = triggerOf(lora);
      pick.append(el("option", { value: lora.file, text: lora.name + (trig ? ` (${trig})` : "") }));
    }
  } catch (err) { showError(errorBox, err); }
}

function prefill() {
  const q = new URLSearchParams(location.search);
  for (const key of ["prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width",
                     "height", "num_images"]) {
    if (q.has(key)) form.elements[key].value = q.get(key);
  }
  if (["seed", "steps", "guidance_scale", "width", "height"].some((k) => q.has(k))) {
    form.querySelector("details").open = true;
  }
  for (const spec of q.getAll("lora")) {
    const [file, strength] = spec.split(":");
    addLora(file, strength === undefined ? 1.0 : Number(strength));
  }
}

function body() {
  const b = { prompt: form.elements.prompt.value, negative_prompt: form.elements.negative_prompt.value };
  for (const key of ["seed", "steps", "width", "height", "num_images"]) {
    if (form.elements[key].value !== "") b[key] = parseInt(form.elements[key].value, 10);
  }
  if (form.elements.guidance_scale.value !== "") b.guidance_scale = parseFloat(form.elements.guidance_scale.value);
  b.loras = [...stack.children].map((li) => ({
    file: li.dataset.file, strength: parseFloat(li.querySelector("input[type=range]").value) }));
  return b;
}

function showResults(data) {
  results.replaceChildren(...data.images.map((im) => el("figure", {},
    el("a", { href: im.url, target: "_blank" },
       el("img", { src: im.url, alt: `Generated: ${im.parameters.prompt} (seed ${im.seed})` })),
    el("figcaption", { text: `seed ${im.seed} · ${data.seconds}s` }))));
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError(errorBox, null);
  if (!form.elements.prompt.value.trim()) {
    showError(errorBox, new Error("Type a prompt first."));
    form.elements.prompt.focus();
    return;
  }
  const button = document.getElementById("generate-btn");
  button.disabled = true;
  busy.hidden = false;
  try {
    showResults(await api("POST", "/generate", body()));
  } catch (err) {
    showError(errorBox, err);
  } finally {
    button.disabled = false;
    busy.hidden = true;
  }
});

document.getElementById("lora-add").addEventListener("click", () => {
  addLora(pick.value);
  pick.value = "";
});
loadLoras().then(prefill);
