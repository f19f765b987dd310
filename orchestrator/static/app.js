// Shared helpers for every page: API calls that turn error bodies into words, and the
// engine banner.
"use strict";

class ApiError extends Error {}

async function api(method, url, body) {
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
    const msg = data && data.error ? data.error.message : `${resp.status} ${resp.statusText}`;
    throw new ApiError(msg);
  }
  return data;
}

function showError(el, err) {
  el.textContent = err ? (err.message || String(err)) : "";
  el.hidden = !err;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

// A LoRA's sample image, if it is a PNG data URL (the kind LoraMint writes); else null.
function safeThumbnail(value) {
  return typeof value === "string" && value.startsWith("data:image/png;base64,") ? value : null;
}

function formatBytes(n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
}

async function refreshBanner() {
  const banner = document.getElementById("engine-banner");
  try {
    const h = await api("GET", "/health");
    const e = h.engine, model = e.health && e.health.model;
    let text = "";
    if (e.state !== "ready") text = `Engine ${e.state}${e.reason ? ": " + e.reason : ""}`;
    else if (model === "builtin:demo") {
      text = "Running the built-in demo model (shapes and colours only)" +
        (e.health.fallback_reason ? `: ${e.health.fallback_reason}` : ".");
    }
    banner.textContent = text;
    banner.hidden = !text;
    banner.classList.toggle("error", e.state === "error");
  } catch (err) {
    banner.textContent = err.message;
    banner.hidden = false;
  }
}
refreshBanner();
setInterval(refreshBanner, 5000);
