// The specialist console: status, queues, incoming call (ring, countdown,
// accept/decline), the call itself, then the wrap-up form.

import { api, ApiError, formatSeconds, logout } from "./api.js";
import { CallMedia, isCaller } from "./call.js";
import { ChatPanel } from "./chat.js";
import { DocumentsPanel } from "./console-documents.js";
import { InvitePanel } from "./console-invite.js";
import { ConsoleForms } from "./console-form.js";
import { JointPanel } from "./console-joint.js";
import { $, el } from "./dom.js";
import { formatWait, pageI18n } from "./i18n.js";
import { openCameraAndMicrophone } from "./media.js";
import { mediaAvailable, mediaErrorMessageKey } from "./media-errors.js";
import { Ringer } from "./ring.js";
import { MSG, SignalingClient, storageSlot } from "./signaling.js";
import { RemoteStage } from "./stage.js";

/** Status changes the specialist did not ask for, explained; others need no note. */
const STATUS_REASONS = new Set(["missed_offer", "missed_offers", "wrapup_timeout"]);

const ringer = new Ringer();
const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);
const state = {
  me: null,
  status: "away",
  localStream: null,
  offer: null,
  countdown: null,
  callId: null,
  wrapupSession: null,
  waiting: { count: 0, longestAt: 0 },
};

const signaling = new SignalingClient({
  getToken: async () => {
    try {
      return (await api("/api/ws-ticket")).ticket;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) err.fatal = true;
      throw err;
    }
  },
  resumeStore: storageSlot(sessionStorage, "vwin.console.resume"),
});
const media = new CallMedia({ signaling, role: "specialist", getLocalStream: () => ensureMedia() });
const stage = new RemoteStage({
  media, main: $("remote-video"), tiles: $("remote-tiles"), isMain: isCaller,
});
const chat = new ChatPanel({
  root: $("console-chat"), signaling, labels: { you: () => t("console.chat.you"), failed: () => t("console.chat.failed") },
});
const invite = new InvitePanel({ signaling, t });
globalThis.vwin = { signaling, media, ringer };

function showPanel(name) {
  for (const panel of document.querySelectorAll(".panel.work")) panel.hidden = panel.id !== `${name}-panel`;
  document.body.dataset.panel = name;
}

async function ensureMedia() {
  if (state.localStream) return state.localStream;
  try {
    state.localStream = await openCameraAndMicrophone();
    $("self-video").srcObject = state.localStream;
    $("media-warning").textContent = "";
  } catch (err) {
    $("media-warning").textContent = t(mediaErrorMessageKey(err));
  }
  return state.localStream;
}

// ---- status and queues ------------------------------------------------------------

function renderStatus(status, reason = "") {
  state.status = status;
  const label = $("agent-state");
  label.textContent = i18n.code("console.status", status);
  label.dataset.status = status;
  $("status-available").setAttribute("aria-pressed", String(status === "available"));
  $("status-away").setAttribute("aria-pressed", String(status === "away"));
  const idle = status === "available" || status === "away";
  $("status-available").disabled = !idle;
  $("status-away").disabled = !idle;
  $("idle-text").textContent = t(status === "available" ? "console.idle.available" : "console.idle.away");
  if (idle && STATUS_REASONS.has(reason)) $("idle-note").textContent = t(`console.statusReason.${reason}`);
  if (status === "wrap_up" && !state.wrapupSession && !state.callId) openWrapup(null);
}

async function setStatus(status) {
  ringer.unlock();
  if (status === "available") await ensureMedia();
  if (!signaling.send(MSG.AGENT_STATUS, { status })) $("idle-note").textContent = t("console.notConnected");
}

function renderQueues(queues) {
  const skills = state.me?.skills ?? {};
  const mine = Object.keys(skills).length ? queues.filter((q) => q.id in skills) : queues;
  invite.setQueues(queues);
  showWaiting(mine);
  $("queue-rows").replaceChildren(...mine.map((q) => el("tr", { dataset: { queue: q.id } },
    el("th", { scope: "row", textContent: i18n.name("queue", q.id) }),
    el("td", { className: "num waiting", textContent: q.open ? String(q.waiting) : t("console.queues.closed") }),
    el("td", { className: "num", textContent: q.waiting ? formatSeconds(q.longest_wait_s) : "—" }),
    el("td", { className: "num", textContent: String(q.agents_available) }),
  )));
  if (mine.length === 0) {
    $("queue-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 4, textContent: t("console.queues.none") })));
  }
}

/** Calls waiting in my queues, on every panel; the longest wait keeps counting between updates. */
function showWaiting(mine) {
  const waiting = mine.reduce((n, q) => n + (q.waiting ?? 0), 0);
  const longest = Math.max(0, ...mine.filter((q) => q.waiting).map((q) => q.longest_wait_s ?? 0));
  state.waiting = { count: waiting, longestAt: Date.now() - longest * 1000 };
  renderWaiting();
}

function renderWaiting() {
  const summary = $("waiting-summary");
  const { count, longestAt } = state.waiting;
  summary.hidden = false;
  summary.dataset.waiting = String(count);
  if (!count) {
    summary.textContent = t("waiting.none");
    return;
  }
  const wait = formatWait(i18n, (Date.now() - longestAt) / 1000);
  summary.textContent = t("waiting.some", { n: count, wait });
}

// ---- incoming call -------------------------------------------------------------------

// Offers are known by call and offer number: one call may ring this console again after
// a withdrawal. With several nodes an offer's call.withdrawn may come before the
// call.offered itself (withdrawn as it was made): such an offer is over and must not ring.
const unsettledOffers = new Set();
const withdrawnEarly = new Set();
const offerKey = (message) => `${message.call_id}#${message.offer}`;

function onOffered(offer) {
  if (withdrawnEarly.delete(offerKey(offer))) return;
  unsettledOffers.add(offerKey(offer));
  state.offer = offer;
  const site = offer.terminal.site;
  $("offer-invitation").hidden = !offer.joins;
  $("offer-invitation").textContent = offer.joins ? t(offer.transfer ? "offer.transfer" : "offer.invited") : "";
  const enterprise = offer.enterprise;
  $("offer-queue").textContent = offer.overflow_from
    ? t("console.offer.overflow", { queue: i18n.name("queue", offer.queue), from: i18n.name("queue", offer.overflow_from) })
    : i18n.name("queue", offer.queue);
  $("offer-site").replaceChildren(el("span", { translate: false, textContent: site.name }),
    t("console.offer.siteKind", { kind: i18n.code("site_kind", site.kind) }));
  $("offer-terminal").textContent = offer.terminal.name;
  $("offer-enterprise").translate = !enterprise; // what the visitor typed stays as typed
  $("offer-enterprise").textContent = enterprise
    ? [enterprise.name, enterprise.uscc].filter(Boolean).join(" · ") : t("console.offer.noEnterprise");
  let remaining = Math.round(offer.ring_timeout_s);
  $("offer-countdown").textContent = String(remaining);
  clearInterval(state.countdown);
  state.countdown = setInterval(() => {
    remaining = Math.max(0, remaining - 1);
    $("offer-countdown").textContent = String(remaining);
  }, 1000);
  ringer.start();
  $("offer-panel").dataset.ringing = "true";
  $("offer-panel").dataset.audible = String(ringer.audible);
  showPanel("offer");
  $("accept-call").focus();
}

function stopRinging() {
  ringer.stop();
  clearInterval(state.countdown);
  $("offer-panel").dataset.ringing = "false";
  state.offer = null;
}

async function answer(accept) {
  const offer = state.offer;
  if (!offer) return;
  stopRinging();
  if (accept) await ensureMedia();
  signaling.send(accept ? MSG.CALL_ACCEPT : MSG.CALL_DECLINE,
    { call_id: offer.call_id, offer: offer.offer });
  if (!accept) showPanel("idle");
}

function onWithdrawn(message) {
  if (!unsettledOffers.delete(offerKey(message))) {
    withdrawnEarly.add(offerKey(message));
    return;
  }
  if (!state.offer || offerKey(state.offer) !== offerKey(message)) return;
  stopRinging();
  showPanel("idle");
  $("idle-note").textContent = t("console.withdrawn", { reason: i18n.code("reason", message.reason) });
}

// ---- in call and wrap-up ---------------------------------------------------------------

function onConnected(message) {
  for (const key of unsettledOffers) {
    if (key.startsWith(`${message.call_id}#`)) unsettledOffers.delete(key);
  }
  stopRinging();
  state.callId = message.call_id;
  state.wrapupSession = message.session_id;
  const peer = message.participants.find((p) => p.id !== message.you && isCaller(p));
  $("call-peer").textContent = peer?.name ?? t("console.call.caller");
  $("recording-notice").hidden = !message.recording;
  if (!message.resumed) $("media-state").textContent = t("console.call.connectingMedia");
  chat.open(message.call_id, message.you, { keep: message.resumed });
  invite.open(message.call_id);
  if (!message.resumed) showDocument(false);
  showPanel("call");
  $("hang-up").focus();
}

function onEnded(message) {
  if (message.call_id !== state.callId) return;
  state.callId = null;
  chat.close();
  invite.close();
  enlarge(false);
  showDocument(false);
  stage.clear();
  openWrapup(message.session_id);
}

function openWrapup(sessionId) {
  state.wrapupSession = sessionId;
  $("wrapup-form").reset();
  $("wrapup-status").textContent = sessionId ? "" : t("console.wrapup.noSession");
  $("wrapup-save").disabled = !sessionId;
  showPanel("wrapup");
  $("wrapup-form").querySelector("input[name=outcome]").focus();
}

function saveWrapup(event) {
  event.preventDefault();
  const form = $("wrapup-form");
  const outcome = form.elements.outcome.value;
  if (!outcome) {
    $("wrapup-status").textContent = t("console.wrapup.chooseOutcome");
    return;
  }
  const sent = signaling.send(MSG.SESSION_WRAPUP, {
    session_id: state.wrapupSession, outcome, notes: $("wrapup-notes").value,
  });
  $("wrapup-status").textContent = t(sent ? "console.wrapup.saving" : "console.notConnected");
}

function finishWrapup() {
  state.wrapupSession = null;
  signaling.send(MSG.AGENT_WRAPUP_DONE, {});
  showPanel("idle");
}

function onSaved(message) {
  if (message.what === "wrapup" && message.session_id === state.wrapupSession) {
    $("wrapup-status").textContent = t("console.wrapup.saved");
    finishWrapup();
    $("idle-note").textContent = t("console.wrapup.savedNote");
  }
}

function onError(message) {
  const text = i18n.error(message);
  // An answer that crossed the offer's withdrawal: back to idle, unless a new offer rings.
  if (message.code === "offer_gone" && !state.offer && document.body.dataset.panel === "offer") {
    showPanel("idle");
  }
  if (document.body.dataset.panel === "wrapup") $("wrapup-status").textContent = text;
  else $("idle-note").textContent = text;
}

// ---- the remote video: enlarge it, and say when the visitor shows a document ----------

function enlarge(on) {
  $("call-panel").dataset.enlarged = String(on);
  $("enlarge-video").setAttribute("aria-pressed", String(on));
  $("enlarge-video").textContent = t(on ? "call.shrink" : "call.enlarge");
}

function showDocument(on) {
  $("document-notice").hidden = !on;
  $("document-notice").textContent = on ? t("call.document") : "";
  $("call-panel").dataset.document = String(on);
}

function showConnection({ state: connection }) {
  const banner = $("conn-state");
  banner.hidden = connection === "open";
  banner.textContent = t(connection === "reconnecting" ? "common.reconnecting" : connection === "closed"
    ? "common.disconnected" : "common.connecting");
  document.body.dataset.connection = connection;
}

async function main() {
  if (!mediaAvailable()) {
    $("insecure-warning").textContent = t("media.insecure");
    $("insecure-warning").hidden = false;
  }
  $("logout").addEventListener("click", () => {
    signaling.stop();
    logout();
  });
  $("status-available").addEventListener("click", () => setStatus("available"));
  $("status-away").addEventListener("click", () => setStatus("away"));
  $("accept-call").addEventListener("click", () => answer(true));
  $("decline-call").addEventListener("click", () => answer(false));
  $("hang-up").addEventListener("click", () => {
    if (state.callId) signaling.send(MSG.CALL_HANGUP, { call_id: state.callId });
  });
  $("wrapup-form").addEventListener("submit", saveWrapup);
  $("wrapup-skip").addEventListener("click", finishWrapup);
  $("enlarge-video").addEventListener("click", () => enlarge($("call-panel").dataset.enlarged !== "true"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && $("call-panel").dataset.enlarged === "true") enlarge(false);
  });
  enlarge(false);
  setInterval(() => state.waiting.count && renderWaiting(), 1000);
  media.on("remote-status", ({ participant, status }) => {
    if (isCaller(participant) && "document" in status) showDocument(Boolean(status.document));
  });
  media.on("peer-state", ({ state: pcState }) => {
    $("media-state").textContent = pcState === "connected" ? "" : t("console.call.videoState", { state: i18n.code("peer_state", pcState) });
  });
  signaling.on("state", showConnection);
  signaling.on(MSG.AGENT_STATUS, (m) => renderStatus(m.status, m.reason));
  signaling.on(MSG.QUEUE_STATUS, (m) => renderQueues(m.queues));
  signaling.on(MSG.CALL_OFFERED, onOffered);
  signaling.on(MSG.CALL_WITHDRAWN, onWithdrawn);
  signaling.on(MSG.CALL_CONNECTED, onConnected);
  signaling.on(MSG.CALL_ENDED, onEnded);
  signaling.on(MSG.SAVED, onSaved);
  signaling.on(MSG.ERROR, onError);
  signaling.on("unauthorized", () => window.location.assign("/login?next=/console"));
  signaling.on("stopped", ({ why }) => {
    if (why === "forbidden") window.location.assign("/login?next=/console");
    if (["logged_out", "expired", "password_changed", "disabled"].includes(why)) {
      stopRinging();
      media.closePeers();
      showPanel("idle");
      $("idle-text").textContent = t(`console.ended.${why}`);
    }
    if (why === "replaced") {
      stopRinging();
      media.closePeers();
      showPanel("idle");
      $("idle-text").textContent = t("console.replaced");
    }
  });
  signaling.on("token-error", (err) => {
    if (err.fatal) window.location.assign("/login?next=/console");
  });
  showPanel("idle");
  state.me = await api("/api/me");
  globalThis.vwin.joint = new JointPanel({ signaling, me: () => state.me });
  globalThis.vwin.documents = new DocumentsPanel({ signaling });
  globalThis.vwin.forms = new ConsoleForms({ signaling });
  signaling.start();
}

main();
