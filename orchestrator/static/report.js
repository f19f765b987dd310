// A training's report card (#28): the verdict, the recommended picture, a checkpoint × strength
// grid of a held-out prompt, the four scores over the steps, and advice with one-click actions.
import { el, safeThumbnail } from "./lib.js";

const VERDICTS = {
  good: "Good: it learned the subject and keeps the rest.",
  undertrained: "Undertrained: it has not learned the subject yet.",
  overtrained: "Overtrained: an earlier step or a lower strength is better than the end.",
};
const SCORES = [
  ["learned", "Learned (trigger prompts show it)"],
  ["follows_prompts", "Follows the rest of new prompts (colours, settings)"],
  ["keeps_rest", "Keeps other prompts"],
  ["copies", "Copies the uploads (lower is better)"],
];

function gridTable(job, report, actions) {
  const strengths = [...new Set(job.checkpoints.flatMap((c) => Object.keys(c.grid || {})))]
    .sort((a, b) => Number(a) - Number(b));
  if (!strengths.length) return null;
  const rec = report.recommended;
  const head = el("tr", {}, el("th", { scope: "col", text: "Step" }),
    ...strengths.map((s) => el("th", { scope: "col", text: `strength ${s}` })),
    el("th", { scope: "col", text: "Keep" }));
  const strength = rec ? rec.strength : 1;
  const fills = [];  // a kept checkpoint's pictures not drawn yet
  const rows = job.checkpoints.map((c) => el("tr", {},
    el("th", { scope: "row", text: `${c.step}${c.kept ? "" : " (dropped)"}` }),
    ...strengths.map((s) => {
      const best = rec && rec.step === c.step && Number(s) === rec.strength;
      const cell = el("td", best ? { class: "recommended" } : {});
      const image = (src) => el("img", { src, alt: `Step ${c.step} at strength ${s}${best ? " (recommended)" : ""}` });
      const src = safeThumbnail((c.grid || {})[s]);
      if (src) cell.append(image(src));
      else if (c.kept) {
        // Not judged at this strength: drawn when asked, between the engine's other work.
        const button = el("button", { type: "button", class: "secondary draw", text: "Draw",
          "aria-label": `Draw step ${c.step} at strength ${s}` });
        const fill = async () => {
          if (button.disabled || !button.isConnected) return true;  // drawn, or on its way
          button.disabled = true;
          button.textContent = "Drawing…";
          const picture = safeThumbnail(await actions.draw(c.step, s));
          if (picture) cell.replaceChildren(image(picture));
          else { button.disabled = false; button.textContent = "Draw"; }
          return Boolean(picture);
        };
        button.addEventListener("click", fill);
        fills.push(fill);
        cell.append(button);
      } else cell.append("–");
      return cell;
    }),
    el("td", {}, c.saved_as ? el("small", { text: c.saved_as })
      : c.kept ? el("button", { type: "button", class: "secondary", text: `Save step ${c.step}`,
        onclick: () => actions.save(c.step, strength) }) : "–")));
  const table = el("table", { class: "report-grid" },
    el("caption", { text: `“${report.grid_prompt}”, a prompt your images don't have` }),
    el("thead", {}, head), el("tbody", {}, ...rows));
  if (!fills.length) return table;
  const all = el("button", { type: "button", class: "secondary", text: "Draw the missing pictures" });
  all.addEventListener("click", async () => {
    all.disabled = true;
    let drawn = true;
    for (const fill of fills) drawn = (await fill()) !== false && drawn;  // one at a time
    if (drawn) all.remove(); else all.disabled = false;
  });
  return el("div", {}, table, all);
}

function scoreChart(report) {
  const steps = Object.keys(report.scores).map(Number).sort((a, b) => a - b);
  if (steps.length < 1) return null;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 300 100");
  svg.setAttribute("preserveAspectRatio", "none");  // as wide as the card, a fixed height
  svg.setAttribute("role", "img");
  const last = steps[steps.length - 1] || 1;
  const x = (s) => 6 + (288 * s) / last, y = (v) => 94 - 88 * v;
  const words = [];
  for (const [key, label] of SCORES) {
    const values = steps.map((s) => (report.scores[String(s)]["1"] || {})[key]).filter((v) => v !== undefined);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", steps.map((s, i) => `${x(s).toFixed(1)},${y(values[i] ?? 0).toFixed(1)}`).join(" "));
    line.setAttribute("class", `score-line ${key}`);
    svg.append(line);
    words.push(`${label}: ${values.map((v) => Math.round(v * 100)).join(", ")}`);
  }
  const title = document.createElementNS(ns, "title");
  title.textContent = `Scores at strength 1 by step (${steps.join(", ")}): ${words.join("; ")}`;
  svg.prepend(title);
  const legend = el("ul", { class: "legend" }, ...SCORES.map(([key, label]) =>
    el("li", { class: key, text: `${label}: ${Math.round(((report.scores[String(last)]["1"] || {})[key] || 0) * 100)}` })));
  return el("figure", { class: "chart" }, svg, el("figcaption", { text: "Scores over the steps, at full strength" }), legend);
}

function adviceList(report, actions) {
  return el("ul", { class: "advice" }, ...report.advice.map((a) => {
    let button = null;
    if (a.action === "save") {
      button = el("button", { type: "button", text: `Save step ${a.step} at ${a.strength}`,
        onclick: () => actions.save(a.step, a.strength) });
    } else if (a.action === "continue") {
      button = el("button", { type: "button", text: `Continue ${a.steps} steps`,
        onclick: () => actions.continue(a.steps) });
    } else if (a.action === "retrain") {
      button = el("button", { type: "button", class: "secondary", text: "Train again",
        onclick: () => actions.retrain(a.settings || {}) });
    }
    return el("li", {}, el("span", { text: a.text }), button ? " " : null, button);
  }));
}

// Fills `box` with the job's report card; `actions`: save(step, strength), continue(steps),
// retrain(settings), draw(step, strength) -> the picture's data URL (or null).
export function drawReport(job, box, actions) {
  const report = job.report;
  box.hidden = !report;
  if (!report) return;
  const parts = [el("h3", { text: report.final ? "Report card" : "Report card so far" })];
  if (!report.verdict) {
    parts.push(el("p", { class: "muted", text: `No scores: ${report.unavailable || "nothing judged yet"}.` }));
    box.replaceChildren(...parts);
    return;
  }
  parts.push(el("p", { class: `verdict ${report.verdict}`, text: VERDICTS[report.verdict] }));
  const rec = report.recommended;
  if (rec) {
    const point = job.checkpoints.find((c) => c.step === rec.step);
    const src = point && safeThumbnail((point.grid || {})[String(rec.strength)] || (point.grid || {})["1"]);
    parts.push(el("p", {}, `Recommended: step ${rec.step} at strength ${rec.strength}, with a prompt like “${rec.prompt}”.`,
      src ? el("img", { class: "recommended-image", src, alt: `Recommended: step ${rec.step} at strength ${rec.strength}` }) : null));
  }
  parts.push(adviceList(report, actions));
  const chart = scoreChart(report);
  if (chart) parts.push(chart);
  const grid = gridTable(job, report, actions);
  if (grid) parts.push(grid);
  parts.push(el("p", { class: "muted", text: `Read by ${report.judge}, in ${report.seconds.toFixed(1)} s.` }));
  box.replaceChildren(...parts);
}
