// Pending matters for the managers: open / overdue by department with the
// on-time rate, the list with due dates, and the state changes.

import { api, formatDateTime, logout } from "./api.js";
import { $, el } from "./dom.js";

const NEXT = { open: ["in_progress", "escalated", "resolved"], in_progress: ["resolved", "escalated"], escalated: ["in_progress", "resolved"], resolved: [] };

function departmentRow(d) {
  const rate = d.resolved ? `${Math.round((100 * d.resolved_on_time) / d.resolved)} %` : "—";
  return el("tr", {}, el("th", { scope: "row", textContent: d.department }),
    el("td", { className: "num", textContent: String(d.unresolved) }),
    el("td", { className: "num", textContent: String(d.overdue) }),
    el("td", { className: "num", textContent: String(d.resolved) }),
    el("td", { className: "num", textContent: rate }));
}

async function change(matter, state) {
  let note = null;
  if (state === "resolved") {
    note = window.prompt("Resolution note");
    if (!note?.trim()) return;
  }
  try {
    await api(`/api/matters/${encodeURIComponent(matter.id)}`, { method: "PATCH", body: { state, note } });
    await refresh();
  } catch (err) {
    $("matters-status").textContent = `Not changed: ${err.message}`;
  }
}

function matterRow(m) {
  const select = el("select", { "aria-label": `Change state of matter ${m.id}` },
    el("option", { value: "", textContent: "Change…" }),
    ...NEXT[m.state].map((s) => el("option", { value: s, textContent: s.replace("_", " ") })));
  select.disabled = NEXT[m.state].length === 0;
  select.addEventListener("change", () => select.value && change(m, select.value));
  return el("tr", { dataset: { matter: m.id } },
    el("td", {}, m.due, m.overdue ? el("span", { className: "badge overdue", textContent: " overdue" }) : ""),
    el("td", { textContent: m.class }),
    el("td", { textContent: m.department }),
    el("td", { textContent: m.enterprise_name }),
    el("td", { textContent: m.description }),
    el("td", {}, el("span", { className: `badge state-${m.state}`, textContent: m.state.replace("_", " ") }),
      m.resolution ? ` ${m.resolution}` : ""),
    el("td", { textContent: `${formatDateTime(m.opened_at)} · ${m.opened_by_name ?? m.opened_by}` }),
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
    if (data.matters.length === 0) $("matter-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 8, textContent: "No matters." })));
    $("matters-status").textContent = `${data.matters.length} matter(s); today is ${data.today}.`;
  } catch (err) {
    $("matters-status").textContent = `Could not load: ${err.message}`;
  }
}

$("logout").addEventListener("click", logout);
$("matter-filters").addEventListener("submit", refresh);
refresh();
