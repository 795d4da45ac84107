// The parties of one session side by side on one timeline (issue 4).
//
// Each recording segment starts at its manifest's `started_at_unix` (the recorder clock of
// the file's time 0), so a segment plays at `timeline - (start - sessionStart)`. One clock
// drives every <video>: play, pause and the seek bar move them all, and a video that
// drifts more than DRIFT_S from the clock is put back. A gap between segments (a recorder
// was lost) shows as a paused, dimmed video.

import { formatSeconds } from "./api.js";
import { el } from "./dom.js";
import { pageI18n } from "./i18n.js";

const DRIFT_S = 0.25;
const TICK_MS = 200;

const i18n = pageI18n();

/** "T1 (terminal)": the participant's id as written, its role in the page's language. */
function partyLabel(id) {
  const [role, ...rest] = id.split(":");
  return [el("span", { translate: false, textContent: rest.join(":") }), ` (${i18n.code("role", role)})`];
}

/** Group playable segments by participant; times in seconds from the session's first frame. */
export function layout(recordings) {
  const playable = recordings.filter((r) => r.url && r.started_at_unix !== null && r.duration_s);
  if (!playable.length) return null;
  const origin = Math.min(...playable.map((r) => r.started_at_unix));
  const parties = new Map();
  for (const r of playable) {
    const start = r.started_at_unix - origin;
    const list = parties.get(r.participant_id) ?? [];
    list.push({ ...r, start, end: start + r.duration_s });
    parties.set(r.participant_id, list);
  }
  for (const list of parties.values()) list.sort((a, b) => a.start - b.start);
  const end = Math.max(...playable.map((r) => r.started_at_unix - origin + r.duration_s));
  return { origin, end, parties };
}

export function mountRecordings(section, recordings) {
  const plan = layout(recordings);
  const list = el("ul", { className: "recording-list" }, ...recordings.map((r) => el("li", {},
    ...partyLabel(r.participant_id),
    ` · ${i18n.t("recording.segment", { n: r.segment })} · ${i18n.code("recording_state", r.state)}`,
    r.duration_s ? ` · ${formatSeconds(r.duration_s)}` : "",
    r.error ? el("span", { className: "muted", dataset: { error: r.error }, textContent: ` — ${i18n.t("recording.failed")}` }) : null,
  )));
  if (!plan) {
    section.querySelector("#recordings-empty").hidden = recordings.length > 0;
    section.append(list);
    return null;
  }
  section.querySelector("#recordings-empty").hidden = true;
  const screens = new Map();
  const grid = el("div", { className: "recording-grid" });
  for (const [party, segments] of plan.parties) {
    const video = el("video", { preload: "auto", playsInline: true, dataset: { party } });
    screens.set(party, { video, segments, current: null });
    grid.append(el("figure", {}, video, el("figcaption", {}, ...partyLabel(party))));
  }
  const play = el("button", { type: "button", className: "btn", textContent: i18n.t("recording.play") });
  const seek = el("input", { type: "range", min: "0", max: String(plan.end), step: "0.1", value: "0",
    ariaLabel: i18n.t("recording.position") });
  const clock = el("span", { className: "mono" });
  section.append(grid, el("div", { className: "recording-controls" }, play, seek, clock), list);

  let position = 0;
  let playing = false;
  let startedAt = 0;
  let timer = null;

  const now = () => (playing ? position + (performance.now() - startedAt) / 1000 : position);

  function sync() {
    const t = Math.min(now(), plan.end);
    seek.value = String(t);
    clock.textContent = `${formatSeconds(t)} / ${formatSeconds(plan.end)}`;
    for (const screen of screens.values()) {
      const segment = screen.segments.find((s) => t >= s.start && t < s.end) ?? null;
      if (segment !== screen.current) {
        screen.current = segment;
        if (segment) screen.video.src = segment.url;
        else screen.video.removeAttribute("src");
      }
      screen.video.classList.toggle("gap", !segment);
      if (!segment) continue;
      const local = t - segment.start;
      if (Math.abs(screen.video.currentTime - local) > DRIFT_S) screen.video.currentTime = local;
      if (playing && screen.video.paused) screen.video.play().catch(() => {});
      if (!playing && !screen.video.paused) screen.video.pause();
    }
    if (t >= plan.end && playing) pause();
  }

  function start() {
    if (position >= plan.end) position = 0;
    playing = true;
    startedAt = performance.now();
    play.textContent = i18n.t("recording.pause");
    timer = setInterval(sync, TICK_MS);
    sync();
  }

  function pause() {
    position = now();
    playing = false;
    play.textContent = i18n.t("recording.play");
    clearInterval(timer);
    sync();
  }

  play.addEventListener("click", () => (playing ? pause() : start()));
  seek.addEventListener("input", () => {
    position = Number(seek.value);
    startedAt = performance.now();
    sync();
  });
  sync();
  return { screens, seekTo: (t) => { position = t; startedAt = performance.now(); sync(); }, start, pause };
}
