// The mask brush: paint on a canvas of the picture's own size laid over it, where /generate's
// "Start from an image" draws anew, or what /train-lora's masked training learns. Mouse, pen
// and touch (pointer events); a brush size, an eraser, clear, invert and undo (Ctrl+Z). The
// mask leaves as a black-and-white PNG.
const UNDO_DEPTH = 30;
const INK = "#ff1a8c";  // shows on any picture; the exported mask is white wherever there is ink

export class MaskPainter {
  constructor(canvas, onChange = () => {}, cursor = null) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.onChange = onChange;
    this.size = 24;  // brush diameter, in the picture's pixels
    this.erasing = false;
    this.undos = [];
    this.last = null;
    canvas.addEventListener("pointerdown", (ev) => this.down(ev));
    canvas.addEventListener("pointermove", (ev) => this.move(ev));
    for (const end of ["pointerup", "pointercancel", "pointerleave"]) {
      canvas.addEventListener(end, () => { this.last = null; });
    }
    // From the keyboard: arrows move the brush (shown by `cursor`), Space paints a dot there,
    // Shift+arrows paint along the way.
    this.at = [0, 0];
    this.cursor = cursor;
    canvas.tabIndex = 0;
    canvas.addEventListener("keydown", (ev) => this.key(ev));
    canvas.addEventListener("focus", () => this.showCursor(true));
    canvas.addEventListener("blur", () => this.showCursor(false));
  }

  key(ev) {
    const step = Math.max(2, this.size / 2);
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
    if (moves[ev.key]) {
      ev.preventDefault();
      const from = this.at;
      this.at = [clamp(from[0] + moves[ev.key][0], this.canvas.width), clamp(from[1] + moves[ev.key][1], this.canvas.height)];
      if (ev.shiftKey) { if (!ev.repeat) this.keep(); this.stroke(from, this.at); }
      this.showCursor(true);
    } else if (ev.key === " ") {
      ev.preventDefault();
      this.keep();
      this.stroke(this.at, this.at);
    }
  }

  showCursor(on) {
    if (!this.cursor) return;
    this.cursor.hidden = !on;
    const r = this.canvas.getBoundingClientRect();
    const scale = r.width / this.canvas.width;
    const d = this.size * scale;
    Object.assign(this.cursor.style, { width: `${d}px`, height: `${d}px`,
      left: `${this.at[0] * scale - d / 2}px`, top: `${this.at[1] * scale - d / 2}px` });
  }

  reset(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.at = [width / 2, height / 2];
    this.undos = [];
    this.changed();
  }

  get painted() {
    const { data } = this.ctx.getImageData(0, 0, this.canvas.width, this.canvas.height);
    for (let i = 3; i < data.length; i += 4) if (data[i]) return true;
    return false;
  }

  point(ev) {
    const r = this.canvas.getBoundingClientRect();
    return [(ev.clientX - r.left) * (this.canvas.width / r.width),
            (ev.clientY - r.top) * (this.canvas.height / r.height)];
  }

  down(ev) {
    ev.preventDefault();
    this.canvas.setPointerCapture(ev.pointerId);
    this.keep();
    this.last = this.point(ev);
    this.stroke(this.last, this.last);
  }

  move(ev) {
    if (!this.last) return;
    const p = this.point(ev);
    this.stroke(this.last, p);
    this.last = p;
  }

  stroke(from, to) {
    const c = this.ctx;
    c.globalCompositeOperation = this.erasing ? "destination-out" : "source-over";
    c.strokeStyle = INK;
    c.lineWidth = this.size;
    c.lineCap = "round";
    c.beginPath();
    c.moveTo(...from);
    c.lineTo(...to);
    c.stroke();
    this.changed();
  }

  keep() {
    this.undos.push(this.ctx.getImageData(0, 0, this.canvas.width, this.canvas.height));
    if (this.undos.length > UNDO_DEPTH) this.undos.shift();
  }

  undo() {
    const before = this.undos.pop();
    if (before) { this.ctx.putImageData(before, 0, 0); this.changed(); }
  }

  clear() {
    this.keep();
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.changed();
  }

  invert() {
    this.keep();
    const img = this.ctx.getImageData(0, 0, this.canvas.width, this.canvas.height);
    const d = img.data;
    for (let i = 0; i < d.length; i += 4) {
      [d[i], d[i + 1], d[i + 2]] = [255, 26, 140];
      d[i + 3] = 255 - d[i + 3];
    }
    this.ctx.putImageData(img, 0, 0);
    this.changed();
  }

  changed() { this.onChange(this); }

  // A mask made elsewhere (white: painted), as ink to touch up; resolves once drawn.
  async load(url) {
    const mask = new Image();
    mask.src = url;
    await mask.decode();
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.ctx.drawImage(mask, 0, 0, this.canvas.width, this.canvas.height);
    const img = this.ctx.getImageData(0, 0, this.canvas.width, this.canvas.height);
    const d = img.data;
    for (let i = 0; i < d.length; i += 4) {
      const level = d[i];
      [d[i], d[i + 1], d[i + 2], d[i + 3]] = [255, 26, 140, level];
    }
    this.ctx.putImageData(img, 0, 0);
    this.undos = [];
    this.changed();
  }

  // White where painted, black elsewhere, the picture's size: what POST /generate's mask is.
  toDataURL() {
    const out = document.createElement("canvas");
    out.width = this.canvas.width;
    out.height = this.canvas.height;
    const c = out.getContext("2d");
    c.drawImage(this.canvas, 0, 0);
    c.globalCompositeOperation = "source-in";  // the ink, white
    c.fillStyle = "#fff";
    c.fillRect(0, 0, out.width, out.height);
    c.globalCompositeOperation = "destination-over";  // on black
    c.fillStyle = "#000";
    c.fillRect(0, 0, out.width, out.height);
    return out.toDataURL("image/png");
  }
}

// The tool buttons of a painter, by element id: brush size, eraser (a toggle), undo, clear,
// invert; Ctrl+Z undoes while `active()` and the focus is not in a text field (which keeps its
// own undo).
export function wireTools(painter, ids, active) {
  const $ = (id) => document.getElementById(id);
  $(ids.size).addEventListener("input", (ev) => { painter.size = Number(ev.target.value); });
  const eraser = $(ids.eraser);
  eraser.addEventListener("click", () => {
    painter.erasing = !painter.erasing;
    eraser.setAttribute("aria-pressed", String(painter.erasing));
  });
  $(ids.clear).addEventListener("click", () => painter.clear());
  $(ids.invert).addEventListener("click", () => painter.invert());
  $(ids.undo).addEventListener("click", () => painter.undo());
  document.addEventListener("keydown", (ev) => {
    const typing = ev.target.matches("textarea, input:not([type=checkbox]):not([type=range]):not([type=radio])");
    if (ev.key === "z" && (ev.ctrlKey || ev.metaKey) && active() && !typing) {
      ev.preventDefault();
      painter.undo();
    }
  });
}
