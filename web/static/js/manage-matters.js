// Pending matters for the managers: open / overdue by department with the
// on-time rate, the list with due dates, and the state changes.

import { api, formatDateTime, logout } from "./api.js";
import { $, el } from "./dom.js";
import { pageI18n } from "./i18n.js";

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);

const NEXT = { open: ["in_progress", "escalated", "resolved"], in_progress: ["resolved", "escalated"], escalated: ["in_progress", "resolved"], resolved: [] };

function departmentRow(d) {
  const rate = d.resolved ? `${Math.round((100 * d.resolved_on_time) / d.resolved)} %` : "—";
  return el("tr", {}, el("th", { scope: "row", textContent: i18n.name("department", d.department) }),
    el("td", { className: "num", textContent: String(d.unresolved) }),
    el("td", { className: "num", textContent: String(d.overdue) }),
    el("td", { className: "num", textContent: String(d.resolved) }),
    el("td", { className: "num", textContent: rate }));
}

async function change(matter, state) {
  let note = null;
  if (state === "resolved") {
    note = window.prompt(t("manage.matters.resolutionPrompt"));
    if (!note?.trim()) return;
  }
  try {
    await api(`/api/matters/${encodeURIComponent(matter.id)}`, { method: "PATCH", body: { state, note } });
    await refresh();
  } catch (err) {
    $("matters-status").textContent = t("manage.matters.changeFailed", { error: i18n.error(err) });
  }
}

function matterRow(m) {
  const select = el("select", { "aria-label": t("manage.matters.changeLabel", { enterprise: m.enterprise_name }) },
    el("option", { value: "", textContent: t("manage.matters.changeOption") }),
    ...NEXT[m.state].map((s) => el("option", { value: s, textContent: i18n.code("matter_state", s) })));
  select.disabled = NEXT[m.state].length === 0;
  select.addEventListener("change", () => select.value && change(m, select.value));
  return el("tr", { dataset: { matter: m.id } },
    el("td", {}, m.due, m.overdue ? el("span", { className: "badge overdue", textContent: ` ${t("manage.matters.overdueBadge")}` }) : ""),
    el("td", { textContent: i18n.code("matter_class", m.class) }),
    el("td", { textContent: i18n.name("department", m.department) }),
    el("td", { translate: false, textContent: m.enterprise_name }),
    el("td", { translate: false, textContent: m.description }),
    el("td", {}, el("span", { className: `badge state-${m.state}`, textContent: i18n.code("matter_state", m.state) }),
      m.resolution ? el("span", { translate: false, textContent: ` ${m.resolution}` }) : ""),
    el("td", {}, `${formatDateTime(m.opened_at)} · `, el("span", { translate: false, textContent: m.opened_by_name ?? m.opened_by })),
    el("td", {}, select));
}

async function refresh(event) {
  event?.preventDefault();
  const params = new URLSearchParams();
  if ($("f-department").value.trim()) params.set("department", $("f-department").value.trim());
  if ($("f-state").value) params.set("state", $("f-state").value);
  if ($("f-overdue").checked) params.set("overdue", "true");
  try {
    const data = await api(`/api/matters?${params}`);
    $("dept-rows").replaceChildren(...(data.departments ?? []).map(departmentRow));
    $("matter-rows").replaceChildren(...data.matters.map(matterRow));
    if (data.matters.length === 0) $("matter-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 8, textContent: t("manage.matters.none") })));
    $("matters-status").textContent = t("manage.matters.count", { n: data.matters.length, today: data.today });
  } catch (err) {
    $("matters-status").textContent = t("common.loadFailed", { error: i18n.error(err) });
  }
}

$("logout").addEventListener("click", logout);
$("matter-filters").addEventListener("submit", refresh);
refresh();
