// "Start from an image" on /generate: a picture dropped, picked, or one of yours; a strength
// slider; a mask painted on it (mask.js); sides to extend. `fields()` is what it adds to a
// POST /generate body. In a preview (which keeps no files) the picture goes inline as a data
// URL; elsewhere it is put in your gallery first (POST /images) and named.
import { api, el, showError } from "./lib.js";
import { MaskPainter, wireTools } from "./mask.js";

const SIDES = ["left", "right", "top", "bottom"];
const $ = (id) => document.getElementById(id);

export function sourcePanel({ preview, errorBox }) {
  const panel = $("start-from");
  const img = $("source-img");
  const strength = $("strength");
  const strengthOut = $("strength-out");
  const maskOn = $("mask-on");
  const canvas = $("mask-canvas");
  let source = null;  // {init: file name or data URL, url: what the <img> shows}
  let strengthTouched = false;
  const painter = new MaskPainter(canvas, (p) => {
    $("mask-undo").disabled = !p.undos.length;
  }, $("brush-cursor"));

  function showStrength() {
    // Until moved, the server's default for the mode is used: say which.
    const mode = maskOn.checked ? "1 with a mask" : extended() ? "0.8 extending" : "0.6";
    strengthOut.textContent = strengthTouched ? Number(strength.value).toFixed(2) : `default (${mode})`;
  }

  function extended() { return SIDES.some((s) => Number($(`extend-${s}`).value) > 0); }

  function use(init, url) {
    source = { init, url };
    img.src = url;
    panel.open = true;
    $("source-chosen").hidden = false;
    $("source-pick").hidden = true;
    img.onload = () => {
      painter.reset(img.naturalWidth, img.naturalHeight);
      $("source-size").textContent = `${img.naturalWidth}×${img.naturalHeight}`;
    };
  }

  function clear() {
    source = null;
    img.removeAttribute("src");
    $("source-chosen").hidden = true;
    $("source-pick").hidden = false;
    $("source-file").value = "";
    maskOn.checked = false;
    canvas.hidden = true;
    $("mask-tools").hidden = true;
    for (const s of SIDES) $(`extend-${s}`).value = "0";
    showStrength();
  }

  async function fromFile(file) {
    showError(errorBox, null);
    if (!file) return;
    try {
      if (preview) {
        const url = await new Promise((ok, fail) => {
          const r = new FileReader();
          r.onload = () => ok(r.result);
          r.onerror = () => fail(new Error(`${file.name} can't be read`));
          r.readAsDataURL(file);
        });
        use(url, url);
      } else {
        const form = new FormData();
        form.append("image", file);
        const up = await api("POST", "/images", form);
        use(up.file, up.url);
      }
    } catch (err) { showError(errorBox, err); }
  }

  async function listMine() {
    const data = await api("GET", "/images?limit=12");
    $("source-list").replaceChildren(...data.images.map((im) => el("li", {},
      el("button", { type: "button", class: "thumb", "aria-label": `Start from ${im.prompt || im.file}`,
                     onclick: () => use(im.file, im.url) },
         el("img", { src: im.url, alt: "", loading: "lazy" })))));
    $("source-none").hidden = data.images.length > 0;
  }

  $("source-file").addEventListener("change", (ev) => fromFile(ev.target.files[0]));
  const drop = $("source-drop");
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    fromFile(ev.dataTransfer.files[0]);
  });
  const mine = $("source-mine");
  if (mine) mine.addEventListener("toggle", () => { if (mine.open) listMine().catch((e) => showError(errorBox, e)); });
  $("source-remove").addEventListener("click", clear);
  strength.addEventListener("input", () => { strengthTouched = true; showStrength(); });
  maskOn.addEventListener("change", () => {
    canvas.hidden = !maskOn.checked;
    $("mask-tools").hidden = !maskOn.checked;
    if (maskOn.checked) for (const s of SIDES) $(`extend-${s}`).value = "0";
    showStrength();
  });
  wireTools(painter, { size: "brush-size", eraser: "mask-eraser", undo: "mask-undo",
                       clear: "mask-clear", invert: "mask-invert" }, () => maskOn.checked);
  for (const s of SIDES) {
    const input = $(`extend-${s}`);
    input.addEventListener("input", showStrength);
    $(`extend-${s}-more`).addEventListener("click", () => {
      input.value = String(Math.min(2048, Number(input.value || 0) + 32));
      maskOn.checked = false;
      canvas.hidden = true;
      $("mask-tools").hidden = true;
      showStrength();
    });
  }
  showStrength();

  return {
    use,
    get active() { return source !== null; },
    // The fields this panel adds to a /generate body, or an Error to show.
    fields() {
      if (!source) return {};
      const f = { init_image: source.init };
      if (strengthTouched) f.strength = Number(strength.value);
      if (maskOn.checked) {
        if (!painter.painted) return new Error("Paint the area to repaint on the picture, or untick Paint a mask.");
        f.mask = painter.toDataURL();
        f.mask_blur = Number($("mask-blur").value);
        f.mask_crop = $("mask-crop").checked;
      } else if (extended()) {
        f.extend = Object.fromEntries(SIDES.map((s) => [s, Number($(`extend-${s}`).value) || 0]));
      }
      return f;
    },
  };
}
