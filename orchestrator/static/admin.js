// Users (admins only): add users, disable or enable them, and see what each one stores.
import { api, el, formatBytes, showError } from "./lib.js";

const usersError = document.getElementById("users-error");

function usageCells(u) {
  if (!u.usage) return [el("td", { text: "?" }), el("td", { text: "?" }), el("td", { text: "?" })];
  const { loras, images, loras_bytes, images_bytes, training_bytes } = u.usage;
  return [el("td", { text: String(loras) }), el("td", { text: String(images) }),
          el("td", { text: formatBytes(loras_bytes + images_bytes + (training_bytes || 0)) })];
}

async function load() {
  try {
    const { users } = await api("GET", "/admin/users");
    document.querySelector("#user-table tbody").replaceChildren(...users.map((u) =>
      el("tr", { "data-user": u.name },
        el("td", { text: u.name }), el("td", { text: u.is_admin ? "admin" : "user" }),
        el("td", { text: u.disabled ? "disabled" : "enabled" }), ...usageCells(u),
        el("td", { text: new Date(u.created).toLocaleDateString() }),
        el("td", {}, el("button", {
          type: "button", class: u.disabled ? "secondary" : "danger",
          text: u.disabled ? "Enable" : "Disable", "aria-label": `${u.disabled ? "Enable" : "Disable"} ${u.name}`,
          onclick: () => setDisabled(u.name, !u.disabled) })))));
    showError(usersError, null);
  } catch (err) { showError(usersError, err); }
}

async function setDisabled(name, disabled) {
  try { await api("PATCH", `/admin/users/${encodeURIComponent(name)}`, { disabled }); await load(); }
  catch (err) { showError(usersError, err); }
}

document.getElementById("add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target, data = new FormData(form);
  const body = { name: data.get("name"), password: data.get("password"), admin: data.has("admin") };
  try {
    await api("POST", "/admin/users", body);
    document.getElementById("add-status").textContent = `Added ${body.name}.`;
    form.reset();
    await load();
  } catch (err) { showError(usersError, err); }
});

load();
