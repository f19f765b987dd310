// Your account: change the password, create and revoke API tokens (one by one, or all).
import { api, el, showError } from "./lib.js";

const tokBody = document.querySelector("#tok-table tbody");
const tokError = document.getElementById("tok-error");
const day = (iso) => (iso ? new Date(iso).toLocaleString() : "never");

async function loadTokens() {
  try {
    const { tokens } = await api("GET", "/account/tokens");
    tokBody.replaceChildren(...tokens.map((t) => el("tr", { "data-id": t.id },
      el("td", { text: t.label }), el("td", { text: t.id }), el("td", { text: day(t.created) }),
      el("td", { text: day(t.last_used) }),
      el("td", { text: t.revoked ? `revoked ${day(t.revoked)}` : "active" }),
      el("td", {}, t.revoked ? null : el("button", {
        type: "button", class: "danger", text: "Revoke",
        "aria-label": `Revoke token ${t.label}`, onclick: () => revoke(t.id) })))));
    showError(tokError, null);
  } catch (err) { showError(tokError, err); }
}

async function revoke(id) {
  if (!confirm("Revoke this token? Scripts using it stop working at once.")) return;
  try { await api("DELETE", `/account/tokens/${id}`); await loadTokens(); }
  catch (err) { showError(tokError, err); }
}

document.getElementById("tok-revoke-all").addEventListener("click", async () => {
  if (!confirm("Revoke every API token? Every script using one stops working at once.")) return;
  try { await api("POST", "/account/tokens/revoke-all"); await loadTokens(); }
  catch (err) { showError(tokError, err); }
});

document.getElementById("tok-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const label = document.getElementById("tok-label");
  try {
    const t = await api("POST", "/account/tokens", { label: label.value });
    const box = document.getElementById("tok-new");
    const copied = el("span", { role: "status" });
    const copy = el("button", { type: "button", class: "secondary", text: "Copy",
                                "aria-label": `Copy the token for ${t.label}`, onclick: async () => {
      try { await navigator.clipboard.writeText(t.token); copied.textContent = " Copied."; }
      catch (err) { copied.textContent = " Copying is blocked here: select the token and copy it."; }
    } });
    box.replaceChildren(`New token for ${t.label} (shown only now): `, el("code", { text: t.token }), " ", copy, copied);
    box.hidden = false;
    label.value = "";
    await loadTokens();
  } catch (err) { showError(tokError, err); }
});

document.getElementById("pw-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target, status = document.getElementById("pw-status");
  const body = Object.fromEntries(new FormData(form));
  try {
    await api("POST", "/account/password", body);
    form.reset();
    status.textContent = "Password changed. Your other sign-ins have ended; your API tokens " +
      "still work (Revoke all tokens below ends them).";
    showError(document.getElementById("pw-error"), null);
  } catch (err) { status.textContent = ""; showError(document.getElementById("pw-error"), err); }
});

loadTokens();
