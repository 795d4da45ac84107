// One session: summary, participants, the event timeline, chat transcript,
// wrap-up and rating, from GET /api/sessions/{id}; the recordings play side by
// side on one timeline (recording-player.js).

import { api, formatDateTime, formatSeconds, logout } from "./api.js";
import { $, el } from "./dom.js";
import { mountRecordings } from "./recording-player.js";

const OUTCOMES = { resolved: "Resolved", follow_up: "Follow-up needed", referred: "Referred" };
const HIDDEN_DATA = new Set(["text"]);

function facts(target, pairs) {
  target.replaceChildren(...pairs.flatMap(([label, value]) => [
    el("dt", { textContent: label }),
    el("dd", { textContent: value === null || value === undefined || value === "" ? "—" : String(value) }),
  ]));
}

function describe(data) {
  return Object.entries(data ?? {})
    .filter(([key, value]) => !HIDDEN_DATA.has(key) && value !== null && typeof value !== "object")
    .map(([key, value]) => `${key.replaceAll("_", " ")}: ${value}`)
    .join(", ");
}

function render({ session: s, participants, events, recordings = [] }) {
  mountRecordings($("recordings"), recordings);
  document.title = `Session ${s.id} · Virtual Window`;
  facts($("summary"), [
    ["Queue", s.queue],
    ["Site", s.site_name ?? s.site_id],
    ["Terminal", s.terminal_name ?? s.terminal_id],
    ["Enterprise", [s.enterprise_name, s.enterprise_uscc].filter(Boolean).join(" · ")],
    ["Specialist", s.specialist_name],
    ["State", s.state],
    ["Started", formatDateTime(s.created_at)],
    ["Answered", formatDateTime(s.answered_at)],
    ["Ended", formatDateTime(s.ended_at)],
    ["Wait", formatSeconds(s.wait_s)],
    ["Talk", formatSeconds(s.talk_s)],
    ["End reason", s.end_reason],
  ]);
  facts($("outcome"), [
    ["Outcome", OUTCOMES[s.outcome] ?? s.outcome],
    ["Notes", s.notes],
    ["Rating", s.rating ? `${"★".repeat(s.rating)}${"☆".repeat(5 - s.rating)} (${s.rating}/5)` : null],
    ["Rating comment", s.rating_comment],
  ]);
  $("participants").replaceChildren(...participants.map((p) => el("tr", {},
    el("td", { textContent: p.name || p.principal_id || p.participant_id }),
    el("td", { textContent: p.role }),
    el("td", { textContent: formatDateTime(p.joined_at) }),
    el("td", { textContent: formatDateTime(p.left_at) }),
  )));
  const chats = events.filter((e) => e.type === "chat");
  $("transcript").replaceChildren(...(chats.length ? chats.map((e) => el("p", { className: "chat-line" },
    el("time", { dateTime: e.ts, textContent: new Date(e.ts).toLocaleTimeString() }),
    " ", el("strong", { textContent: e.data?.name ?? e.actor ?? "" }), ` ${e.data?.text ?? ""}`,
  )) : [el("p", { className: "muted", textContent: "No chat in this session." })]));
  $("timeline").replaceChildren(...events.map((e) => el("li", { dataset: { type: e.type } },
    el("time", { dateTime: e.ts, textContent: formatDateTime(e.ts) }),
    " ", el("span", { className: "event-type", textContent: e.type.replaceAll("_", " ") }),
    e.actor ? ` by ${e.actor}` : "",
    describe(e.data) ? el("span", { className: "muted", textContent: ` — ${describe(e.data)}` }) : null,
  )));
}

async function main() {
  $("logout").addEventListener("click", logout);
  const id = document.body.dataset.sessionId;
  try {
    render(await api(`/api/sessions/${encodeURIComponent(id)}`));
    $("load-status").textContent = "";
  } catch (err) {
    $("load-status").textContent = err.status === 404 ? "No such session." : `Could not load: ${err.message}`;
  }
}

main();
