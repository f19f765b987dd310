// /train-lora's first choice, what you teach: GET /presets' object, character, style and
// quick-test, with the values each sets for this model and image count, and why. Choosing one
// fills the caption template, the flip box and the Advanced settings' placeholders; what you
// type there still wins (the job records it as changed from the preset).
import { api, el, showError } from "./lib.js";
import { engineReady } from "./shell.js";

const LABELS = {
  steps: "Steps", rank: "Rank", learning_rate: "Learning rate", caption: "Caption template",
  flip: "Mirror images too", prior_preservation: "Prior preservation",
  new_context: "Second sample prompt",
};

function shown(value) {
  if (value === true) return "on";
  if (value === false) return "off";
  return String(value);
}

export function trainPresets({ form, template, retemplate, count, masked, errorBox }) {
  const box = document.getElementById("presets");
  const list = document.getElementById("preset-settings");
  let presets = [];
  let asked = "";

  const current = () => presets.find((p) => p.name === (form.elements.preset.value || "object"));

  function apply(fill) {
    const preset = current();
    if (!preset) return;
    const s = preset.settings;
    for (const name of ["steps", "rank", "learning_rate"]) {
      form.elements[name].placeholder = `${shown(s[name].value)} (preset)`;
    }
    form.elements.prior_preservation.options[0].textContent = `preset: ${shown(s.prior_preservation.value)}`;
    if (fill) {  // a choice made now: its caption and flip, as the user sees them
      template.value = s.caption.value;
      form.elements.flip.checked = s.flip.value;
      retemplate();
    }
    list.replaceChildren(...Object.entries(LABELS).map(([key, label]) => el("li",
      { class: s[key].changed ? "changed" : "" },
      el("strong", { text: `${label}: ${shown(s[key].value)}` }), ` — ${s[key].why}`)));
  }

  function draw() {
    const checked = form.elements.preset ? form.elements.preset.value : "object";
    box.replaceChildren(el("legend", { text: "What are you teaching?" }), ...presets.map((p) => {
      const id = `preset-${p.name}`;
      const radio = el("input", { type: "radio", name: "preset", id, value: p.name,
                                  "aria-describedby": `${id}-use` });
      radio.checked = p.name === (checked || "object");
      radio.addEventListener("change", () => apply(true));
      // The title alone names the choice; what it is for describes it.
      return el("div", { class: "preset" }, radio, el("label", { for: id, text: p.title }),
        el("small", { id: `${id}-use`, text: p.use_for }));
    }));
  }

  // Steps depend on the image count and masks: asked again when they change.
  async function refresh() {
    await engineReady;
    const query = `?images=${Math.min(5, Math.max(1, count()))}&masked=${masked()}`;
    if (query === asked) return;
    asked = query;
    try {
      const first = !presets.length;
      presets = (await api("GET", `/presets${query}`)).presets;
      if (first) draw();
      apply(first);
    } catch (err) { asked = ""; showError(errorBox, err); }
  }
  return { refresh };
}
