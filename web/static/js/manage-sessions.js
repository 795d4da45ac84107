// Sessions list: the filter form is the URL (shareable, back button works),
// rows come from /api/sessions with cursor pagination, CSV uses the same filters.

import { api, formatDateTime, formatSeconds, logout } from "./api.js";
import { $, el } from "./dom.js";
import { pageI18n } from "./i18n.js";

const PAGE_SIZE = 50;
const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);

let nextCursor = null;

function currentFilters() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData($("filters"))) {
    if (String(value).trim()) params.set(key, String(value).trim());
  }
  return params;
}

function fillForm(params) {
  for (const field of $("filters").elements) {
    if (field.name) field.value = params.get(field.name) ?? "";
  }
}

function row(s) {
  const link = el("a", { href: `/manage/sessions/${encodeURIComponent(s.id)}`, textContent: formatDateTime(s.created_at) });
  const place = [s.site_name ?? s.site_id, s.terminal_name ?? s.terminal_id].filter(Boolean).join(" / ");
  const enterprise = [s.enterprise_name, s.enterprise_uscc].filter(Boolean).join(" · ");
  return el("tr", { dataset: { session: s.id } },
    el("td", {}, link),
    el("td", { textContent: i18n.name("queue", s.queue) }),
    el("td", { translate: false, textContent: place }),
    el("td", { translate: false, textContent: enterprise || "—" }),
    el("td", { translate: false, textContent: s.specialist_name ?? "—" }),
    el("td", {}, el("span", { className: `badge state-${s.state}`, textContent: i18n.code("session_state", s.state) })),
    el("td", { className: "num", textContent: formatSeconds(s.wait_s) }),
    el("td", { className: "num", textContent: formatSeconds(s.talk_s) }),
    el("td", { textContent: i18n.code("outcome", s.outcome) }),
    el("td", { className: "num", textContent: s.rating ? `${"★".repeat(s.rating)} ${s.rating}` : "—" }),
  );
}

async function load({ append = false } = {}) {
  const params = currentFilters();
  $("csv-link").href = `/api/sessions.csv?${params}`;
  params.set("limit", String(PAGE_SIZE));
  if (append && nextCursor) params.set("cursor", nextCursor);
  $("list-status").textContent = t("common.loading");
  try {
    const data = await api(`/api/sessions?${params}`);
    const rows = data.sessions.map(row);
    if (append) $("session-rows").append(...rows);
    else $("session-rows").replaceChildren(...rows);
    nextCursor = data.next_cursor ?? null;
    $("load-more").hidden = !nextCursor;
    const shown = $("session-rows").children.length;
    $("list-status").textContent = shown ? t("manage.sessions.shown", { n: shown }) : t("manage.sessions.none");
  } catch (err) {
    $("list-status").textContent = t("common.loadFailed", { error: i18n.error(err) });
  }
}

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const params = currentFilters();
  history.replaceState(null, "", params.toString() ? `?${params}` : window.location.pathname);
  load();
});
$("filters").addEventListener("reset", () => {
  setTimeout(() => {
    history.replaceState(null, "", window.location.pathname);
    load();
  });
});
$("load-more").addEventListener("click", () => load({ append: true }));
$("logout").addEventListener("click", logout);
fillForm(new URLSearchParams(window.location.search));
load();
