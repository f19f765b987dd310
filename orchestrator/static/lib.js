// Shared by every page: API calls that turn error bodies into words, DOM building, and the
// small formatting helpers. An ES module: nothing here is a global.

export class ApiError extends Error {
  constructor(message, status = 0, code = "") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, url, body) {
  const opts = { method, headers: {} };
  if (body instanceof FormData) opts.body = body;
  else if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers["content-type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(url, opts);
  } catch (e) {
    throw new ApiError("Can't reach LoraMint. Is it still running?");
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (resp.status === 401 && document.body.dataset.page !== "login") {
    // Signed out meanwhile (session ended, password changed): sign in and come back here.
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  if (!resp.ok) {
    const err = data && data.error;
    throw new ApiError(err ? err.message : `${resp.status} ${resp.statusText}`, resp.status,
                       err ? err.code : "");
  }
  return data;
}

export function showError(box, err) {
  box.textContent = err ? (err.message || String(err)) : "";
  box.hidden = !err;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

// A LoRA's sample image, if it is a PNG data URL (the kind LoraMint writes); else null.
export function safeThumbnail(value) {
  return typeof value === "string" && value.startsWith("data:image/png;base64,") ? value : null;
}

export function formatBytes(n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
}

export function formatDuration(s) {
  if (s === null || s === undefined) return "";
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`;
}

export function formatDate(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// One of LoraMint's own metadata values of a LoRA listing entry, decoded.
export function loraMeta(lora, key) {
  const v = lora.metadata && lora.metadata[`loramint.${key}`];
  if (v === undefined) return "";
  try { return JSON.parse(v); } catch (e) { return v; }
}

// The /generate link that puts this LoRA in the stack, at its preferred strength, with its
// trigger word starting the prompt.
// `prompt`: a whole prompt that works (the report card's); else the trigger word to go on from.
export function useLoraUrl(file, trigger = "", strength = 1, prompt = "") {
  const q = new URLSearchParams({ lora: `${file}:${strength}` });
  if (prompt || trigger) q.set("prompt", prompt || `${trigger} `);
  return `/generate?${q}`;
}

export function useLoraUrlOf(lora) {
  return useLoraUrl(lora.file, loraMeta(lora, "trigger_word"), loraMeta(lora, "preferred_strength") || 1);
}

// The /generate link that repeats an image's settings.
export function reuseUrl(p) {
  const q = new URLSearchParams();
  for (const key of ["prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height"]) {
    if (p[key] !== undefined && p[key] !== null && p[key] !== "") q.set(key, p[key]);
  }
  for (const l of p.loras || []) q.append("lora", `${l.file}:${l.strength}`);
  return `/generate?${q}`;
}

// Follow a job's Server-Sent Events until it ends; `onJob(job)` for each state. Falls back
// to polling if the stream breaks. Returns a function that stops following.
export function followJob(id, onJob) {
  let stopped = false;
  const source = new EventSource(`/jobs/${id}/events`);
  const handle = (job) => {
    if (stopped) return;
    onJob(job);
    if (["succeeded", "failed", "cancelled"].includes(job.status)) stop();
  };
  for (const name of ["queued", "running", "succeeded", "failed", "cancelled"]) {
    source.addEventListener(name, (ev) => handle(JSON.parse(ev.data)));
  }
  const poll = async () => {
    while (!stopped) {
      try { handle(await api("GET", `/jobs/${id}`)); } catch (err) { /* keep trying */ }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  source.onerror = () => { source.close(); poll(); };
  function stop() { stopped = true; source.close(); }
  return stop;
}

export const TERMINAL = ["succeeded", "failed", "cancelled"];
