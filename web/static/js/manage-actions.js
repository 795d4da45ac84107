// Joint actions for the managers: filter by type, state and period; each row
// shows who signed which department's step.

import { api, formatDateTime, logout } from "./api.js";
import { $, el } from "./dom.js";


function row(a) {
  const steps = a.steps.map((s) => `${s.department}: ${s.signed_by_name ?? s.signed_by ?? "—"}`).join("; ");
  const session = a.session_id
    ? el("a", { href: `/manage/sessions/${encodeURIComponent(a.session_id)}`, textContent: "open" }) : "—";
  return el("tr", { dataset: { action: a.action_id } },
    el("td", { textContent: formatDateTime(a.started_at) }),
    el("td", { textContent: a.name_en }),
    el("td", { textContent: a.enterprise.name }),
    el("td", { className: "mono", textContent: a.enterprise.uscc }),
    el("td", {}, el("span", { className: `badge state-${a.state}`, textContent: a.state }),
      a.reason ? ` ${a.reason}` : ""),
    el("td", { textContent: steps }),
    el("td", {}, session),
  );
}

async function refresh(event) {
  event?.preventDefault();
  const params = new URLSearchParams();
  for (const [name, id] of [["action", "f-action"], ["state", "f-state"], ["from", "f-from"], ["to", "f-to"]]) {
    if ($(id).value) params.set(name, $(id).value);
  }
  try {
    const { actions } = await api(`/api/actions?${params}`);
    $("action-rows").replaceChildren(...actions.map(row));
    if (actions.length === 0) $("action-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 7, textContent: "No actions." })));
    $("actions-status").textContent = `${actions.length} action(s).`;
  } catch (err) {
    $("actions-status").textContent = `Could not load: ${err.message}`;
  }
}

async function main() {
  $("logout").addEventListener("click", logout);
  $("action-filters").addEventListener("submit", refresh);
  const { types } = await api("/api/action-types");
  $("f-action").append(...types.map((t) => el("option", { value: t.id, textContent: t.name_en })));
  await refresh();
}

main().catch((err) => { $("actions-status").textContent = `Could not load: ${err.message}`; });
