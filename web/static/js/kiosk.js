// The kiosk: setup -> home -> waiting -> call -> rating -> home, driven by the
// server's messages. Screens are <section>s shown one at a time.

import { CallMedia } from "./call.js";
import { sendStill } from "./capture.js";
import { ChatPanel } from "./chat.js";
import { openingLabel } from "./days.js";
import { $ } from "./dom.js";
import { FormSigning } from "./kiosk-form.js";
import { formatWait, pageI18n } from "./i18n.js";
import { AppointmentPad } from "./kiosk-appointment.js";
import { KioskCamera } from "./kiosk-camera.js";
import { KioskHome } from "./kiosk-home.js";
import { HandoffPanel } from "./kiosk-handoff.js";
import { IdleClock } from "./kiosk-idle.js";
import { MaterialsChecklist } from "./kiosk-materials.js";
import { RatingForm } from "./kiosk-rating.js";
import { PendingRequest } from "./kiosk-request.js";
import { watchResetGesture } from "./kiosk-reset.js";
import { mediaAvailable, mediaErrorMessageKey } from "./media-errors.js";
import { MSG, SignalingClient, storageSlot } from "./signaling.js";
import { RemoteStage } from "./stage.js";

const TOKEN_KEY = "vwin.deviceToken";
const RESUME_KEY = "vwin.resume";
/** Staff hold the logo this long to reach "reset terminal" (visitors tap, they do not hold). */
/** After "thank you", go back home. */
const THANKS_MS = 5000;
/** Screens a visitor may walk away from; in a queue or a call the kiosk waits for the server. */
const IDLE_SCREENS = new Set(["home", "rating", "message", "appointment"]);

const i18n = pageI18n(); // Chinese at every start: the language is never kept for the next visitor
const t = (key, params) => i18n.t(key, params);

const state = {
  screen: null,
  signaling: null,
  media: null,
  chat: null,
  stage: null,
  callId: null,
  cancelled: null, // the call the visitor walked away from: an answer crossing the cancel is not shown
  sessionId: null,
  homeTimer: null,
  handoff: null,
};

const camera = new KioskCamera({ t });
const request = new PendingRequest(); // the `call.request` not answered yet
const home = new KioskHome({ i18n, onChoose: requestCall });
const pad = new AppointmentPad({ i18n, onArrive: (queue, code) => requestCall(queue, null, code) });
const materials = new MaterialsChecklist({ root: $("materials"), i18n, token: () => localStorage.getItem(TOKEN_KEY) });
const rating = new RatingForm({ t, onSubmit: (fields) => submitRating(fields) });
// `[kiosk] idle_reset_s` without a touch (the clock also restarts with every screen).
const idle = new IdleClock({
  seconds: document.body.dataset.idleResetS,
  onIdle: () => {
    if (IDLE_SCREENS.has(state.screen) && state.signaling?.state !== "closed") forgetVisitor();
  },
});

function show(screen) {
  state.screen = screen;
  for (const section of document.querySelectorAll(".screen")) {
    section.hidden = section.id !== `screen-${screen}`;
  }
  document.body.dataset.screen = screen;
  clearTimeout(state.homeTimer);
  idle.restart();
}

function showMessage(titleKey, text) {
  $("message-title").textContent = t(titleKey);
  $("message-text").textContent = text;
  show("message");
}

function goHome() {
  request.settled();
  state.handoff?.reset();
  releaseMedia();
  state.callId = null;
  state.sessionId = null;
  materials.clear();
  home.reset();
  show("home");
}

/** The visitor has gone (call over, rated, or idle): clear every field, back to Chinese, home. */
function forgetVisitor() {
  state.chat?.clear();
  rating.reset();
  $("message-text").textContent = "";
  $("uscc-hint").classList.remove("error");
  i18n.setLang("zh-CN");
  if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
  goHome();
}

// ---- media --------------------------------------------------------------------

function ensureMedia() {
  return camera.open();
}

function releaseMedia() {
  camera.release();
  state.stage?.clear();
}

function showMediaError(err) {
  releaseMedia();
  showMessage("media.title", t(mediaErrorMessageKey(err)));
}

// ---- calls ----------------------------------------------------------------------

async function requestCall(queue, enterprise, appointment = null) {
  try {
    await ensureMedia();
  } catch (err) {
    showMediaError(err);
    return;
  }
  const fields = { queue };
  if (enterprise) fields.enterprise = enterprise;
  if (appointment) fields.appointment = appointment;
  if (!request.send(state.signaling, fields)) {
    showMessage("error.title", t("chat.failed"));
    return;
  }
  $("wait-position").textContent = "—";
  $("wait-estimate").textContent = "—";
  $("waiting-note").textContent = "";
  show("waiting");
  materials.show(queue);
}

/** The socket is back before the request's reply: send it again (`PendingRequest`). */
function requestAgain() {
  return !state.callId && state.screen === "waiting" && request.again(state.signaling);
}

function showPosition(message) {
  state.callId = message.call_id;
  $("wait-position").textContent = t("waiting.positionValue", { n: message.position });
  $("wait-estimate").textContent = formatWait(i18n, message.estimated_wait_s);
}

function onQueued(message) {
  request.settled();
  showPosition(message);
  state.handoff.offer(message.call_id);
  materials.show(message.queue);
  if (state.screen !== "waiting") show("waiting");
  ensureMedia().catch(showMediaError);
}

function onConnected(message) {
  if (message.call_id === state.cancelled) return; // the cancel hangs it up at once
  request.settled();
  state.handoff.reset();
  state.callId = message.call_id;
  state.sessionId = message.session_id;
  const specialist = message.participants.find((p) => p.role === "specialist");
  $("specialist-name").textContent = specialist?.name ?? "";
  $("recording-notice").hidden = !message.recording;
  $("media-state").textContent = message.resumed ? "" : t("call.connectingMedia");
  state.chat.open(message.call_id, message.you, { keep: message.resumed });
  ensureMedia().catch(showMediaError);
  show("call");
}

function onEnded(message) {
  if (message.call_id === state.cancelled) return; // home already, perhaps the next visitor's
  state.chat.close();
  releaseMedia();
  if (message.session_id && state.sessionId === message.session_id) {
    openRating();
  } else {
    forgetVisitor();
  }
}

function onRejected(message) {
  request.settled();
  releaseMedia();
  const key = `rejected.${message.reason}`;
  const known = i18n.t(key) !== key;
  if (message.opens_at) return showMessage("rejected.title", t("rejected.closedUntil", { when: openingLabel(i18n, message.opens_at) }));
  showMessage("rejected.title", known ? t(key) : t("rejected.other", { reason: i18n.code("reason", message.reason) }));
}

function onServerError(message) {
  // Sent again, the request can meet the call its first send made: that call's news follows.
  if (request.explains(message)) return;
  if (message.refused === MSG.CALL_REQUEST) request.settled();
  if (message.code?.startsWith("appointment_") && state.screen === "waiting" && !state.callId) {
    releaseMedia();
    show("appointment");
    pad.problem(i18n.error(message));
  } else if (message.code === "invalid_uscc") {
    goHome();
    $("uscc-hint").textContent = i18n.error(message);
    $("uscc-hint").classList.add("error");
  } else if (message.code !== "unauthorized" && state.screen === "waiting" && !state.callId) {
    releaseMedia();
    showMessage("error.title", t("error.generic", { message: i18n.error(message) }));
  }
}

// ---- rating -----------------------------------------------------------------------

function openRating() {
  rating.reset();
  show("rating");
}

function submitRating({ score, comment }) {
  const fields = { session_id: state.sessionId, score };
  if (comment) fields.comment = comment;
  if (!state.signaling.send(MSG.SESSION_RATE, fields)) rating.status(t("rating.failed"));
}

function onSaved(message) {
  if (message.what !== "rating" || state.screen !== "rating") return;
  rating.status(t("rating.thanks"));
  clearTimeout(state.homeTimer);
  state.homeTimer = setTimeout(forgetVisitor, THANKS_MS);
}

// ---- connection -------------------------------------------------------------------

function showConnection({ state: connection }) {
  const banner = $("conn-state");
  banner.hidden = connection === "open" || connection === "idle";
  banner.dataset.state = connection;
  banner.textContent = connection === "reconnecting" ? t("conn.reconnecting") : t("conn.connecting");
  document.body.dataset.connection = connection;
}

function onWelcome(welcome) {
  $("site-name").textContent = welcome.site ? `${welcome.site.name} · ${welcome.name}` : welcome.name;
  home.setQueues(welcome.queues);
  const busy = state.screen === "waiting" || state.screen === "call";
  if (requestAgain()) return;
  if (busy && !welcome.resumed) {
    state.chat.close();
    state.media.closePeers();
    releaseMedia();
    showMessage("ended.title", t("ended.lost"));
  } else if (!busy && !["rating", "message", "appointment"].includes(state.screen)) {
    // Not from a screen a visitor is on: a kiosk moved to another node (1012) is no news.
    show("home");
  }
}

function connect(token) {
  const signaling = new SignalingClient({
    getToken: async () => token,
    resumeStore: storageSlot(localStorage, RESUME_KEY),
  });
  state.signaling = signaling;
  state.media = new CallMedia({ signaling, role: "terminal", getLocalStream: () => ensureMedia().catch(() => null) });
  state.chat = new ChatPanel({
    root: $("kiosk-chat"), signaling, labels: { you: () => t("chat.you"), failed: () => t("chat.failed") },
  });
  state.handoff = new HandoffPanel({ signaling });
  // A phone took the call over: this kiosk is free for the next visitor.
  signaling.on(MSG.CALL_HANDED_OFF, (m) => m.call_id === state.callId && forgetVisitor());
  state.stage = new RemoteStage({
    media: state.media, main: $("remote-video"), tiles: $("remote-tiles"), label: $("specialist-name"),
    isMain: (p) => p.role === "specialist",
  });
  state.media.on("peer-state", ({ state: pcState }) => {
    $("media-state").textContent = pcState === "connected" ? "" : t("call.connectingMedia");
  });
  signaling.on("state", showConnection);
  signaling.on(MSG.WELCOME, onWelcome);
  signaling.on(MSG.QUEUE_STATUS, (m) => {
    home.setStatus(m.queues);
    const bookable = m.queues.some((q) => q.appointments);
    $("have-appointment").hidden = !bookable;
    $("book-link").hidden = !bookable;
  });
  signaling.on(MSG.CALL_QUEUED, onQueued);
  signaling.on(MSG.CALL_POSITION, showPosition);
  signaling.on(MSG.CALL_REQUEUED, (m) => {
    state.media.closePeers();
    onQueued(m);
    $("waiting-note").textContent = t("waiting.requeued");
  });
  signaling.on(MSG.CALL_REJECTED, onRejected);
  signaling.on(MSG.CALL_CONNECTED, onConnected);
  signaling.on(MSG.CALL_ENDED, onEnded);
  signaling.on(MSG.SAVED, onSaved);
  // The specialist asks for a still: of the document camera when it is shown.
  signaling.on(MSG.DOCUMENT_REQUEST, (m) => m.call_id === state.callId && state.sessionId && sendStill({
    sessionId: state.sessionId, track: camera.videoTrack,
    video: $("self-video"), token: localStorage.getItem(TOKEN_KEY), notice: $("capture-state"), t,
  }));
  signaling.on(MSG.ERROR, onServerError);
  signaling.on("unauthorized", () => {
    if (signaling.welcome) return showMessage("error.title", t("setup.rejected"));
    localStorage.removeItem(TOKEN_KEY);
    $("setup-error").textContent = t("setup.rejected");
    show("setup");
  });
  signaling.on("stopped", ({ why }) => {
    if (why !== "replaced") return;
    state.media.closePeers();
    releaseMedia();
    showMessage("replaced.title", t("replaced.text"));
  });
  globalThis.vwin = { signaling, media: state.media, form: new FormSigning({ signaling, i18n }) };
  signaling.start();
}

// ---- staff: setup and reset -----------------------------------------------------------

/** Staff confirmed a reset: the kiosk forgets its device token and starts over. */
function resetKiosk() {
  // End the visitor's call or place in the queue now: a socket that just closes keeps
  // them for the resume grace, ringing a specialist for a kiosk that will never return.
  if (state.callId && state.screen === "call") state.signaling.send(MSG.CALL_HANGUP, { call_id: state.callId });
  if (state.callId && state.screen === "waiting") state.signaling.send(MSG.CALL_CANCEL, { call_id: state.callId });
  state.signaling?.forgetResume();
  state.signaling?.stop();
  state.media?.dispose();
  releaseMedia();
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(RESUME_KEY);
  window.location.reload();
}

function main() {
  i18n.apply();
  // Say it before anyone taps a matter: outside a secure context no camera can work.
  $("insecure-warning").hidden = mediaAvailable();
  $("lang-toggle").addEventListener("click", () => {
    i18n.setLang(i18n.lang === "zh-CN" ? "en" : "zh-CN");
    if (state.screen === "rating") rating.render();
  });
  watchResetGesture(resetKiosk);
  idle.watch();
  $("setup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("device-token").value.trim();
    if (!token) return;
    localStorage.setItem(TOKEN_KEY, token);
    $("setup-error").textContent = "";
    $("device-token").value = "";
    connect(token);
  });
  $("cancel-call").addEventListener("click", () => {
    state.cancelled = state.callId;
    if (state.callId) state.signaling.send(MSG.CALL_CANCEL, { call_id: state.callId });
    goHome();
  });
  $("hang-up").addEventListener("click", () => {
    if (state.callId) state.signaling.send(MSG.CALL_HANGUP, { call_id: state.callId });
  });
  $("show-document").addEventListener("click", () => camera.toggleDocument(state.media));
  $("have-appointment").addEventListener("click", () => {
    pad.reset();
    show("appointment");
  });
  $("code-back").addEventListener("click", goHome);
  // The booking page in the language the visitor chose here (the kiosk keeps no cookie).
  $("book-link").addEventListener("click", (event) => {
    event.currentTarget.href = `/book?from=kiosk&lang=${encodeURIComponent(i18n.lang)}`;
  });
  $("rating-skip").addEventListener("click", forgetVisitor);
  $("message-home").addEventListener("click", () => {
    if (state.signaling?.state === "closed") window.location.reload();
    else goHome();
  });
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) {
    showConnection({ state: "connecting" });
    connect(token);
  } else {
    show("setup");
  }
}

main();
