// Masked training on /train-lora: an image may carry a mask of what to learn (white), painted
// with the brush (mask.js) or made by "Subject only" (POST /subject-masks) and touched up.
// Each image's thumbnail shows its mask (what is not learnt dimmed); /train-lora gets one mask
// per image, in the images' order (an all-white one for an image learnt whole).
import { api, el, showError } from "./lib.js";
import { MaskPainter, wireTools } from "./mask.js";

const $ = (id) => document.getElementById(id);
const DIM = 0.25;  // how much of what is not learnt shows in a thumbnail

async function picture(url) {
  const img = new Image();
  img.src = url;
  await img.decode();
  return img;
}

// The image with what its mask leaves out dimmed, at most 144 px a side: the thumbnail.
async function masked(item) {
  const [img, mask] = await Promise.all([picture(item.url), picture(item.mask)]);
  const scale = Math.min(1, 144 / Math.max(img.naturalWidth, img.naturalHeight));
  const c = document.createElement("canvas");
  c.width = Math.max(1, Math.round(img.naturalWidth * scale));
  c.height = Math.max(1, Math.round(img.naturalHeight * scale));
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(mask, 0, 0, c.width, c.height);
  const m = ctx.getImageData(0, 0, c.width, c.height).data;
  ctx.drawImage(img, 0, 0, c.width, c.height);
  const out = ctx.getImageData(0, 0, c.width, c.height);
  for (let i = 0; i < m.length; i += 4) {
    const keep = DIM + (1 - DIM) * (m[i] / 255);
    for (let k = 0; k < 3; k++) out.data[i + k] = out.data[i + k] * keep + 24 * (1 - keep);
  }
  ctx.putImageData(out, 0, 0);
  return c.toDataURL("image/png");
}

// A data URL's bytes (fetch() of a data: URL is a connection the CSP would refuse).
function blobOf(url) {
  const [head, body] = url.split(",");
  const bytes = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: head.slice(5, head.indexOf(";")) });
}

async function whiteMask(item) {
  const img = await picture(item.url);
  const c = document.createElement("canvas");
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, c.width, c.height);
  return new Promise((done) => c.toBlob(done, "image/png"));
}

export function trainMasks({ chosen, appendImage, redraw, errorBox, status }) {
  const editor = $("mask-editor");
  const img = $("tm-img");
  const painter = new MaskPainter($("tm-canvas"), (p) => { $("tm-undo").disabled = !p.undos.length; },
    $("tm-cursor"));
  let editing = null;
  wireTools(painter, { size: "tm-size", eraser: "tm-eraser", undo: "tm-undo", clear: "tm-clear",
                       invert: "tm-invert" }, () => !editor.hidden);

  async function setMask(item, url) {
    item.mask = url;
    item.maskView = url ? await masked(item) : null;
  }

  async function edit(item) {
    editing = item;
    $("tm-title").textContent = `What to learn in ${item.name}`;
    img.alt = item.name;
    img.src = item.url;
    await img.decode();
    painter.reset(img.naturalWidth, img.naturalHeight);
    // A brush in proportion to the picture: 24 px covered a third of a 64 px one.
    painter.size = Math.max(2, Math.round(Math.min(img.naturalWidth, img.naturalHeight) / 12));
    $("tm-size").value = String(painter.size);
    if (item.mask) await painter.load(item.mask);
    editor.hidden = false;
    editor.scrollIntoView({ block: "nearest" });
    $("tm-canvas").focus();
  }

  function close() {
    const item = editing;
    editing = null;
    editor.hidden = true;
    redraw();
    const back = item && document.querySelector(`[data-mask-of="${chosen.indexOf(item)}"]`);
    if (back) back.focus();
  }

  $("tm-done").addEventListener("click", async () => {
    // Nothing painted: the whole picture is learnt, as without a mask.
    await setMask(editing, painter.painted ? painter.toDataURL() : null);
    status.textContent = editing.mask ? `Mask of ${editing.name} set.` : `${editing.name}: no mask, all of it is learnt.`;
    close();
  });
  $("tm-cancel").addEventListener("click", close);

  $("subject-only").addEventListener("click", async (ev) => {
    if (!chosen.length) { showError(errorBox, new Error("Choose images first, then Subject only.")); return; }
    const data = new FormData();
    for (const item of chosen) appendImage(data, item);
    ev.target.disabled = true;
    status.textContent = "Finding each image's subject…";
    try {
      const out = await api("POST", "/subject-masks", data);
      await Promise.all(out.masks.map((url, i) => setMask(chosen[i], url)));
      status.textContent = `Masks made by ${out.masker}: the dimmed part of each image is not learnt. ` +
        "Edit a mask to change it.";
      showError(errorBox, null);
      redraw();
    } catch (err) {
      status.textContent = "";
      showError(errorBox, err);
    } finally { ev.target.disabled = false; }
  });

  return {
    // The thumbnail's part: the picture (dimmed where not learnt) and its mask buttons.
    view(item, i) {
      const buttons = [el("button", { type: "button", class: "secondary", "data-mask-of": String(i),
        text: item.mask ? "Edit mask" : "Paint mask", "aria-label": `${item.mask ? "Edit" : "Paint"} the mask of ${item.name}`,
        onclick: () => edit(item).catch((e) => showError(errorBox, e)) })];
      if (item.mask) {
        buttons.push(el("button", { type: "button", class: "secondary", text: "No mask",
          "aria-label": `Remove the mask of ${item.name}`,
          onclick: () => { setMask(item, null); redraw(); } }));
      }
      return el("div", { class: "mask-view" },
        el("img", { src: item.maskView || item.url,
                    alt: item.mask ? `${item.name}, dimmed where it is not learnt` : item.name }),
        item.mask ? el("small", { text: "masked" }) : "", ...buttons);
    },
    // One mask per image when any has one; none at all otherwise.
    async append(data) {
      if (!chosen.some((item) => item.mask)) return;
      for (const item of chosen) {
        const blob = item.mask ? blobOf(item.mask) : await whiteMask(item);
        data.append("masks", blob, `mask-${chosen.indexOf(item) + 1}.png`);
      }
    },
  };
}
