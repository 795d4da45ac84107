// Staff: the accounts a manager sees, new specialists and managers (skills with levels,
// department, unit), a one-time password on creation or reset (shown once), disable and
// enable, and the audit trail of every change. Chinese first, English second.

import { api, formatDateTime, logout } from "./api.js";
import { $, el } from "./dom.js";

const ROLES = { specialist: "专员 Specialist", manager: "管理员 Manager" };
const LEVELS = { city: "市 City", district: "区 District", subdistrict: "街镇 Sub-district", village: "村居 Village" };
const ACTIONS = {
  created: "创建 Created",
  changed: "修改 Changed",
  password_reset: "重置密码 Password reset",
  password_changed: "修改密码 Password changed",
  disabled: "停用 Disabled",
  enabled: "启用 Enabled",
};
const ERRORS = {
  exists: "该用户名已存在。 That username is taken.",
  unknown_queue: "未知的队列。 Unknown queue.",
  unknown_unit: "未知的单位。 Unknown unit.",
  outside_unit: "只能选择本单位及下级单位。 Choose a unit of yours.",
  self: "不能停用自己的账号。 You cannot disable your own account.",
  invalid_body: "输入有误。 Check the fields.",
};

let queues = [];
let units = [];

function status(text) {
  $("staff-status").textContent = text;
}

function failure(prefix, err) {
  status(`${prefix}：${ERRORS[err.code] ?? err.message}`);
}

function showPassword(user, password) {
  $("otp-user").textContent = `${user.name}（${user.username}）`;
  $("otp-value").value = password;
  $("otp-box").hidden = false;
  $("otp-value").focus();
  $("otp-value").select();
}

function queueName(id) {
  const queue = queues.find((q) => q.id === id);
  return queue ? queue.name : id;
}

function stateOf(user) {
  if (user.disabled) return ["revoked", "已停用 Disabled"];
  if (user.must_change_password) return ["offline", "待改密码 Must change password"];
  return ["online", "正常 Active"];
}

function userRow(user) {
  const [badge, label] = stateOf(user);
  const skills = Object.entries(user.skills).map(([q, level]) => `${queueName(q)} ${level}`).join("、") || "—";
  const reset = el("button", { type: "button", className: "btn secondary small", textContent: "重置密码 Reset password",
    "aria-label": `重置 ${user.name} 的密码 Reset the password of ${user.name}` });
  reset.addEventListener("click", () => resetPassword(user));
  const toggle = el("button", { type: "button", className: `btn ${user.disabled ? "secondary" : "danger"} small`,
    textContent: user.disabled ? "启用 Enable" : "停用 Disable",
    "aria-label": `${user.disabled ? "启用 Enable" : "停用 Disable"} ${user.name}` });
  toggle.addEventListener("click", () => setDisabled(user, !user.disabled));
  return el("tr", { dataset: { username: user.username } },
    el("th", { scope: "row", textContent: user.name }),
    el("td", { className: "mono", textContent: user.username }),
    el("td", { textContent: ROLES[user.role] ?? user.role }),
    el("td", { textContent: user.department ?? "—" }),
    el("td", { textContent: skills }),
    el("td", { textContent: user.unit_name ?? "—" }),
    el("td", {}, el("span", { className: `badge ${badge}`, textContent: label })),
    el("td", {}, reset, " ", toggle),
  );
}

function auditRow(change) {
  return el("tr", {},
    el("td", { textContent: formatDateTime(change.ts) }),
    el("td", { textContent: change.actor_name }),
    el("td", { textContent: change.name ? `${change.name}（${change.username}）` : change.username }),
    el("td", { textContent: ACTIONS[change.action] ?? change.action }),
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
    $("audit-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 4, textContent: "暂无变更。 No changes yet." })));
  }
}

async function loadChoices() {
  const [figures, tree] = await Promise.all([api("/api/queues"), api("/api/units")]);
  queues = figures.queues;
  units = flatten(tree.units);
  $("u-skills").append(...queues.map((q) => el("div", { className: "choice" },
    el("label", { for: `skill-${q.id}`, textContent: `${q.name} ${q.name_en ?? ""}` }),
    el("input", { id: `skill-${q.id}`, type: "number", min: 1, max: 9, inputMode: "numeric",
      className: "skill-level", dataset: { queue: q.id }, placeholder: "—" }))));
  $("u-unit").replaceChildren(el("option", { value: "", textContent: "（无 None）" }),
    ...units.map((u) => el("option", { value: u.id,
      textContent: `${"　".repeat(u.depth)}${u.name}（${LEVELS[u.level] ?? u.level}）` })));
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
    department: form.elements.department.value.trim() || null,
    skills,
    unit_id: form.elements.unit.value || null,
  };
  try {
    const result = await api("/api/users", { method: "POST", body });
    form.reset();
    showPassword(result.user, result.one_time_password);
    status(`已创建 ${result.user.name}。 Created ${result.user.name}.`);
    await refresh();
  } catch (err) {
    failure("创建失败 Could not create", err);
  }
}

async function resetPassword(user) {
  if (!window.confirm(`重置 ${user.name} 的密码？其登录和连线将立即结束。\nReset the password of ${user.name}? Their logins end at once.`)) return;
  try {
    const result = await api(`/api/users/${encodeURIComponent(user.username)}/reset-password`, { method: "POST" });
    showPassword(user, result.one_time_password);
    status(`已重置 ${user.name} 的密码。 Password of ${user.name} reset.`);
    await refresh();
  } catch (err) {
    failure("重置失败 Could not reset", err);
  }
}

async function setDisabled(user, disabled) {
  if (disabled && !window.confirm(`停用 ${user.name}？其登录和连线将立即结束。\nDisable ${user.name}? Their logins end at once.`)) return;
  try {
    await api(`/api/users/${encodeURIComponent(user.username)}/${disabled ? "disable" : "enable"}`, { method: "POST" });
    status(disabled ? `已停用 ${user.name}。 ${user.name} disabled.` : `已启用 ${user.name}。 ${user.name} enabled.`);
    await refresh();
  } catch (err) {
    failure("操作失败 Could not change", err);
  }
}

$("user-form").addEventListener("submit", createUser);
$("logout").addEventListener("click", logout);
loadChoices().then(refresh).catch((err) => status(`加载失败 Could not load: ${err.message}`));
