// One session: summary, participants, the event timeline, chat transcript,
// wrap-up and rating, from GET /api/sessions/{id}; the recordings play side by
// side on one timeline (recording-player.js).

import { api, formatDateTime, formatSeconds, logout } from "./api.js";
import { $, el } from "./dom.js";
import { mountCaptured } from "./manage-session-documents.js";
import { mountForms } from "./manage-session-forms.js";
import { mountRecordings } from "./recording-player.js";
import { pageI18n } from "./i18n.js";

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);
/** Event data worth a line in the timeline, and how each value reads: a configured name, a
 * code's words, or the value as written (names, ids: not translated). */
const EVENT_DATA = {
  queue: (v) => i18n.name("queue", v),
  to: (v) => i18n.name("queue", v),
  reason: (v) => i18n.code("reason", v),
  outcome: (v) => i18n.code("outcome", v),
  old: (v) => i18n.code("console.status", v),
  new: (v) => i18n.code("console.status", v),
  role: (v) => i18n.code("role", v),
  wait_s: (v) => i18n.seconds(v),
  score: (v) => String(v),
  agent_name: null,
  name: null,
  terminal_name: null,
  site_name: null,
  specialist: null,
};

/** pairs: [label, value, asWritten]; a value written by people or an id is not translated. */
function facts(target, pairs) {
  target.replaceChildren(...pairs.flatMap(([label, value, asWritten = false]) => [
    el("dt", { textContent: label }),
    el("dd", { translate: !asWritten, textContent: value === null || value === undefined || value === "" ? "—" : String(value) }),
  ]));
}

function describe(data) {
  const parts = [];
  for (const [key, show] of Object.entries(EVENT_DATA)) {
    const value = data?.[key];
    if (value === null || value === undefined || value === "" || typeof value === "object") continue;
    parts.push(" · ", `${t(`event_data.${key}`)}: `,
      show ? show(value) : el("span", { translate: false, textContent: String(value) }));
  }
  return parts;
}

function render({ session: s, participants, events, recordings = [], documents, materials }) {
  mountRecordings($("recordings"), recordings);
  mountCaptured({ queue: s.queue, documents, materials }, i18n);
  document.title = t("manage.session.pageTitle", { id: s.id });
  facts($("summary"), [
    [t("common.queue"), i18n.name("queue", s.queue)],
    [t("common.site"), s.site_name ?? s.site_id, true],
    [t("common.terminal"), s.terminal_name ?? s.terminal_id, true],
    [t("common.enterprise"), [s.enterprise_name, s.enterprise_uscc].filter(Boolean).join(" · "), true],
    [t("common.specialist"), s.specialist_name, true],
    [t("manage.session.state"), i18n.code("session_state", s.state)],
    [t("manage.session.started"), formatDateTime(s.created_at)],
    [t("manage.session.answered"), formatDateTime(s.answered_at)],
    [t("manage.session.ended"), formatDateTime(s.ended_at)],
    [t("manage.sessions.col.wait"), formatSeconds(s.wait_s)],
    [t("manage.sessions.col.talk"), formatSeconds(s.talk_s)],
    [t("manage.session.endReason"), s.end_reason ? i18n.code("reason", s.end_reason) : null],
  ]);
  facts($("outcome"), [
    [t("manage.sessions.outcome"), s.outcome ? i18n.code("outcome", s.outcome) : null],
    [t("manage.session.notes"), s.notes, true],
    [t("manage.sessions.rating"), s.rating ? `${"★".repeat(s.rating)}${"☆".repeat(5 - s.rating)} (${s.rating}/5)` : null],
    [t("manage.session.ratingComment"), s.rating_comment, true],
  ]);
  $("participants").replaceChildren(...participants.map((p) => el("tr", {},
    el("td", { translate: false, textContent: p.name || p.principal_id || p.participant_id }),
    el("td", { textContent: i18n.code("role", p.role) }),
    el("td", { textContent: formatDateTime(p.joined_at) }),
    el("td", { textContent: formatDateTime(p.left_at) }),
  )));
  // Who did it, by name: an event's actor is a participant id (e.g. "specialist:lin" -> 林晓).
  const actors = new Map(participants.filter((p) => p.name).map((p) => [p.participant_id, p.name]));
  const chats = events.filter((e) => e.type === "chat");
  $("transcript").replaceChildren(...(chats.length ? chats.map((e) => el("p", { className: "chat-line" },
    el("time", { dateTime: e.ts, textContent: i18n.time(e.ts) }),
    " ", el("strong", { translate: false, textContent: e.data?.name ?? e.actor ?? "" }),
    el("span", { translate: false, textContent: ` ${e.data?.text ?? ""}` }),
  )) : [el("p", { className: "muted", textContent: t("manage.session.noChat") })]));
  $("timeline").replaceChildren(...events.map((e) => el("li", { dataset: { type: e.type } },
    el("time", { dateTime: e.ts, textContent: formatDateTime(e.ts) }),
    " ", el("span", { className: "event-type", textContent: i18n.code("event", e.type) }),
    ...(e.actor ? [` ${t("manage.session.by")} `, el("span", { translate: false, textContent: actors.get(e.actor) ?? e.actor })] : []),
    el("span", { className: "muted" }, ...describe(e.data)),
  )));
}

async function main() {
  $("logout").addEventListener("click", logout);
  const id = document.body.dataset.sessionId;
  mountForms($("forms"), id);
  try {
    render(await api(`/api/sessions/${encodeURIComponent(id)}`));
    $("load-status").textContent = "";
  } catch (err) {
    $("load-status").textContent = err.status === 404 ? t("manage.session.notFound") : t("common.loadFailed", { error: i18n.error(err) });
  }
}

main();
