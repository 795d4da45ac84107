// Joint actions for the managers: filter by type, state and period; each row
// shows who signed which department's step.

import { api, formatDateTime, logout } from "./api.js";
import { $, el } from "./dom.js";
import { pageI18n } from "./i18n.js";

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);


function row(a) {
  const steps = a.steps.flatMap((s, i) => [i ? "; " : "", `${i18n.name("step", `${a.action}.${s.id}`)} (${i18n.name("department", s.department)}): `,
    s.signed_by ? el("span", { translate: false, textContent: s.signed_by_name ?? s.signed_by }) : "—"]);
  const session = a.session_id
    ? el("a", { href: `/manage/sessions/${encodeURIComponent(a.session_id)}`, textContent: t("manage.actions.open") }) : "—";
  return el("tr", { dataset: { action: a.action_id } },
    el("td", { textContent: formatDateTime(a.started_at) }),
    el("td", { textContent: i18n.name("action", a.action) }),
    el("td", { translate: false, textContent: a.enterprise.name }),
    el("td", { className: "mono", translate: false, textContent: a.enterprise.uscc }),
    el("td", {}, el("span", { className: `badge state-${a.state}`, textContent: i18n.code("action_state", a.state) }),
      a.reason ? el("span", { translate: false, textContent: ` ${a.reason}` }) : ""),
    el("td", {}, ...steps),
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
    if (actions.length === 0) $("action-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 7, textContent: t("manage.actions.none") })));
    $("actions-status").textContent = t("manage.actions.count", { n: actions.length });
  } catch (err) {
    $("actions-status").textContent = t("common.loadFailed", { error: i18n.error(err) });
  }
}

async function main() {
  $("logout").addEventListener("click", logout);
  $("action-filters").addEventListener("submit", refresh);
  const { types } = await api("/api/action-types");
  $("f-action").append(...types.map((t) => el("option", { value: t.id, textContent: i18n.name("action", t.id) })));
  await refresh();
}

main().catch((err) => { $("actions-status").textContent = t("common.loadFailed", { error: i18n.error(err) }); });
