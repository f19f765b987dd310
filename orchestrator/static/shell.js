// Every page's frame: the banner (what state LoraMint is in, in words) and the Jobs badge
// (how many of your jobs are queued or running). Pages wait on `engineReady` before their
// first calls, so nothing shows an error while the engine is still starting.
import { api } from "./lib.js";

let readyResolve;
export const engineReady = new Promise((resolve) => { readyResolve = resolve; });

function showBanner(b) {
  const box = document.getElementById("engine-banner");
  box.hidden = !b;
  if (!b) return;
  box.className = `banner ${b.level}`;
  document.getElementById("banner-text").textContent = b.text;
  document.getElementById("banner-more").textContent = b.details || "";
  document.getElementById("banner-details").hidden = !b.details;
}

async function refreshBanner() {
  try {
    const h = await api("GET", "/health");
    showBanner(h.banner);
    const e = h.engine;
    if (e.state === "ready" && e.health && e.health.status !== "starting") readyResolve(e.health);
  } catch (err) {
    showBanner({ text: err.message, details: "", level: "error" });
  }
}

export async function refreshJobsBadge() {
  const badge = document.getElementById("jobs-badge");
  if (!badge) return;
  try {
    const { jobs } = await api("GET", "/jobs");
    const active = jobs.filter((j) => j.status === "queued" || j.status === "running").length;
    badge.textContent = active ? String(active) : "";
    badge.hidden = !active;
    badge.setAttribute("aria-label", `${active} active`);
  } catch (err) { badge.hidden = true; }
}

refreshBanner();
setInterval(refreshBanner, 5000);
engineReady.then(() => {
  refreshJobsBadge();
  setInterval(refreshJobsBadge, 5000);
});
