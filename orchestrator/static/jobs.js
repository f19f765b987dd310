// /my-jobs: every job of yours with its progress, a way to stop it and a link back to it.
import { api, el, formatDate, formatDuration, showError, TERMINAL } from "./lib.js";
import { engineReady, refreshJobsBadge } from "./shell.js";

const list = document.getElementById("job-list");
const errorBox = document.getElementById("jobs-error");
const cancelling = new Set();

// Named as the job is now: "Generating" while it runs, not beside "succeeded".
function title(job) {
  if (job.kind === "train-lora") return `Training ${job.params.name}`;
  const ended = TERMINAL.includes(job.status);
  const what = `“${job.params.prompt}”`;
  if (!ended) return `Generating ${what}`;
  return job.status === "succeeded" ? `Generated ${what}` : `Generation of ${what}`;
}

function state(job) {
  if (cancelling.has(job.id) && !TERMINAL.includes(job.status)) return "Cancelling…";
  if (job.status === "queued") return job.queue_position ? `queued, number ${job.queue_position} in line` : "queued";
  if (job.status === "running") {
    const left = job.eta_s === null || job.eta_s === undefined ? "" : `, about ${formatDuration(job.eta_s)} left`;
    if (job.phase === "training" || job.phase === "generating") {
      return `${job.phase}: step ${job.step} of ${job.total_steps}${left}`;
    }
    return job.phase_total ? `${job.phase} (${job.phase_step} of ${job.phase_total})` : job.phase;
  }
  return job.status === "failed" ? `failed: ${job.error}` : job.status;
}

function link(job) {
  if (job.kind === "train-lora") return el("a", { href: `/train-lora?job=${job.id}`, text: "Open" });
  if (job.status === "succeeded") return el("a", { href: "/my-images", text: "See images" });
  return null;
}

function item(job) {
  const cancel = async () => {
    cancelling.add(job.id);
    await load();
    try { await api("POST", `/jobs/${job.id}/cancel`); } catch (err) { showError(errorBox, err); }
    await load();
  };
  const resume = async () => {
    try {
      const started = await api("POST", `/jobs/${job.id}/resume`);
      location.href = `/train-lora?job=${started.job_id}`;
    } catch (err) { showError(errorBox, err); }
  };
  const kept = (job.checkpoints || []).filter((c) => c.kept).map((c) => c.step).pop();
  const resumable = job.kind === "train-lora" && kept && (job.status === "cancelled" || job.cut_short);
  const active = !TERMINAL.includes(job.status);
  return el("li", { class: "card job", "data-job": job.id },
    el("h2", { text: title(job) }),
    el("p", {}, el("span", { class: `status ${job.status}`, text: state(job) }), " · ",
       el("time", { datetime: job.created, text: formatDate(job.created) })),
    active ? el("progress", { max: "1", value: String(job.progress || 0), "aria-label": `Progress of ${title(job)}` }) : null,
    el("div", { class: "row" }, link(job),
       active && !cancelling.has(job.id) ? el("button", { type: "button", class: "danger", text: "Cancel",
         "aria-label": `Cancel ${title(job)}`, onclick: cancel }) : null,
       resumable ? el("button", { type: "button", text: `Resume from step ${kept}`,
         "aria-label": `Resume ${title(job)} from step ${kept}`, onclick: resume }) : null));
}

async function load() {
  try {
    const { jobs } = await api("GET", "/jobs");
    list.replaceChildren(...jobs.map(item));
    document.getElementById("jobs-empty").hidden = jobs.length > 0;
    showError(errorBox, null);
    refreshJobsBadge();
  } catch (err) { showError(errorBox, err); }
}

engineReady.then(() => { load(); setInterval(load, 2000); });
