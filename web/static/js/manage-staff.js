// Staff: the accounts a manager sees, new specialists and managers (skills with levels,
// department, unit), a one-time password on creation or reset (shown once), disable and
// enable, and the audit trail of every change.

import { api, logout } from "./api.js";
import { $, el } from "./dom.js";
import { pageI18n } from "./i18n.js";

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);

function status(text) {
  $("staff-status").textContent = text;
}

function failure(err) {
  status(t("manage.staff.failed", { error: i18n.error(err) }));
}

function person(user) {
  return el("span", { translate: false, textContent: `${user.name}（${user.username}）` });
}

function showPassword(user, password) {
  $("otp-user").textContent = `${user.name}（${user.username}）`;
  $("otp-value").value = password;
  $("otp-box").hidden = false;
  $("otp-value").focus();
  $("otp-value").select();
}

function stateOf(user) {
  if (user.disabled) return ["revoked", "disabled"];
  if (user.must_change_password) return ["offline", "must_change"];
  return ["online", "active"];
}

function skillsOf(user) {
  const parts = Object.entries(user.skills).map(([queue, level]) => `${i18n.name("queue", queue)} ${level}`);
  return parts.length ? parts.join("、") : "—";
}

function userRow(user) {
  const [badge, state] = stateOf(user);
  const reset = el("button", { type: "button", className: "btn secondary small", textContent: t("manage.staff.reset"),
    "aria-label": t("manage.staff.resetLabel", { name: user.name }) });
  reset.addEventListener("click", () => resetPassword(user));
  const verb = user.disabled ? "enable" : "disable";
  const toggle = el("button", { type: "button", className: `btn ${user.disabled ? "secondary" : "danger"} small`,
    textContent: t(`manage.staff.${verb}`), "aria-label": t(`manage.staff.${verb}Label`, { name: user.name }) });
  toggle.addEventListener("click", () => setDisabled(user, !user.disabled));
  return el("tr", { dataset: { username: user.username } },
    el("th", { scope: "row", translate: false, textContent: user.name }),
    el("td", { className: "mono", translate: false, textContent: user.username }),
    el("td", { textContent: i18n.code("role", user.role) }),
    el("td", { textContent: user.department ? i18n.name("department", user.department) : "—" }),
    el("td", { textContent: skillsOf(user) }),
    el("td", { translate: false, textContent: user.unit_name ?? "—" }),
    el("td", {}, el("span", { className: `badge ${badge}`, textContent: i18n.code("account_state", state) })),
    el("td", {}, reset, " ", toggle),
  );
}

function auditRow(change) {
  return el("tr", {},
    el("td", { textContent: i18n.time(change.ts) }),
    el("td", { translate: false, textContent: change.actor_name }),
    el("td", {}, change.name ? person({ name: change.name, username: change.username })
      : el("span", { translate: false, textContent: change.username })),
    el("td", { textContent: i18n.code("account_change", change.action) }),
  );
}

function flatten(nodes, depth = 0) {
  return nodes.flatMap((unit) => [{ ...unit, depth }, ...flatten(unit.children, depth + 1)]);
}

async function refresh() {
  const [{ users }, { changes }] = await Promise.all([api("/api/users"), api("/api/users/audit")]);
  $("staff-rows").replaceChildren(...users.map(userRow));
  $("audit-rows").replaceChildren(...changes.map(auditRow));
  if (changes.length === 0) {
    $("audit-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 4, textContent: t("manage.staff.noChanges") })));
  }
}

async function loadUnits() {
  const units = flatten((await api("/api/units")).units);
  $("u-unit").append(...units.map((u) => el("option", { value: u.id, translate: false,
    textContent: `${"　".repeat(u.depth)}${u.name}（${i18n.code("unit_level", u.level)}）` })));
}

async function createUser(event) {
  event.preventDefault();
  const form = event.currentTarget;
  if (!form.reportValidity()) return;
  const skills = {};
  for (const input of form.querySelectorAll(".skill-level")) {
    if (input.value) skills[input.dataset.queue] = Number(input.value);
  }
  const body = {
    username: form.elements.username.value.trim(),
    name: form.elements.name.value.trim(),
    role: form.elements.role.value,
    department: form.elements.department.value || null,
    skills,
    unit_id: form.elements.unit.value || null,
  };
  try {
    const result = await api("/api/users", { method: "POST", body });
    form.reset();
    showPassword(result.user, result.one_time_password);
    status(t("manage.staff.created", { name: result.user.name }));
    await refresh();
  } catch (err) {
    failure(err);
  }
}

async function resetPassword(user) {
  if (!window.confirm(t("manage.staff.resetConfirm", { name: user.name }))) return;
  try {
    const path = `/api/users/${encodeURIComponent(user.username)}/reset-password`;
    const result = await api(path, { method: "POST" });
    showPassword(user, result.one_time_password);
    status(t("manage.staff.resetDone", { name: user.name }));
    await refresh();
  } catch (err) {
    failure(err);
  }
}

async function setDisabled(user, disabled) {
  if (disabled && !window.confirm(t("manage.staff.disableConfirm", { name: user.name }))) return;
  try {
    await api(`/api/users/${encodeURIComponent(user.username)}/${disabled ? "disable" : "enable"}`, { method: "POST" });
    status(t(disabled ? "manage.staff.disabled" : "manage.staff.enabled", { name: user.name }));
    await refresh();
  } catch (err) {
    failure(err);
  }
}

$("user-form").addEventListener("submit", createUser);
$("logout").addEventListener("click", logout);
loadUnits().then(refresh).catch((err) => failure(err));
