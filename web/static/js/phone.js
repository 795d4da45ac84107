// The phone page (`/m/<ticket>`): a visitor took their kiosk's waiting call over by
// scanning its QR code. The page says hello with the ticket (the first hello takes the
// call over; later ones, after a reload or a network change, must bring the resume
// token kept in localStorage), then shows the place in the queue and, once served,
// the video call, chat, hang-up and rating: the kiosk's modules, on a phone.

import { CallMedia } from "./call.js";
import { ChatPanel } from "./chat.js";
import { $ } from "./dom.js";
import { formatWait, pageI18n } from "./i18n.js";
import { RatingForm } from "./kiosk-rating.js";
import { openCameraAndMicrophone, stopStream } from "./media.js";
import { mediaAvailable, mediaErrorMessageKey } from "./media-errors.js";
import { MSG, SignalingClient, storageSlot } from "./signaling.js";
import { RemoteStage } from "./stage.js";

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);
const ticket = document.body.dataset.ticket;

const state = { screen: null, callId: null, sessionId: null, localStream: null, ended: false, place: null };

function show(screen) {
  state.screen = screen;
  for (const section of document.querySelectorAll(".screen")) {
    section.hidden = section.id !== `screen-${screen}`;
  }
  document.body.dataset.screen = screen;
}

function showMessage(titleKey, text) {
  $("message-title").textContent = t(titleKey);
  $("message-text").textContent = text;
  show("message");
}

async function ensureMedia() {
  if (!state.localStream) {
    state.localStream = await openCameraAndMicrophone();
    $("self-video").srcObject = state.localStream;
  }
  return state.localStream;
}

function releaseMedia() {
  stopStream(state.localStream);
  state.localStream = null;
  $("self-video").srcObject = null;
}

const signaling = new SignalingClient({
  getToken: async () => ticket,
  resumeStore: storageSlot(localStorage, `vwin.phone.resume.${ticket}`),
});
const media = new CallMedia({ signaling, role: "visitor", getLocalStream: () => ensureMedia().catch(() => null) });
const chat = new ChatPanel({
  root: $("phone-chat"), signaling, labels: { you: () => t("chat.you"), failed: () => t("chat.failed") },
});
new RemoteStage({
  media, main: $("remote-video"), tiles: $("remote-tiles"), label: $("specialist-name"),
  isMain: (p) => p.role === "specialist",
});
const rating = new RatingForm({
  t,
  onSubmit: ({ score, comment }) => {
    const fields = { session_id: state.sessionId, score };
    if (comment) fields.comment = comment;
    if (!signaling.send(MSG.SESSION_RATE, fields)) rating.status(t("rating.failed"));
  },
});

/** The place in the queue, in the page's language (again after a language switch). */
function renderPlace() {
  if (!state.place) return;
  $("wait-position").textContent = t("waiting.positionValue", { n: state.place.position });
  $("wait-estimate").textContent = formatWait(i18n, state.place.estimated_wait_s);
}

function showPosition(message) {
  state.callId = message.call_id;
  state.place = message;
  renderPlace();
  if (state.screen !== "waiting") show("waiting");
}

function onConnected(message) {
  state.callId = message.call_id;
  state.sessionId = message.session_id;
  $("recording-notice").hidden = !message.recording;
  $("media-state").textContent = message.resumed ? "" : t("call.connectingMedia");
  chat.open(message.call_id, message.you, { keep: message.resumed });
  ensureMedia().catch((err) => {
    $("media-state").textContent = t(mediaErrorMessageKey(err));
  });
  show("call");
}

function onEnded(message) {
  state.ended = true;
  chat.close();
  releaseMedia();
  if (message.session_id && message.session_id === state.sessionId) {
    rating.reset();
    show("rating");
  } else {
    signaling.forgetResume();
    signaling.stop();
    showMessage("ended.title", t("phone.ended"));
  }
}

function onError(message) {
  if (!signaling.welcome) {
    // The hello was refused: a ticket used or expired, said in the visitor's words.
    showMessage("phone.refused", i18n.error(message));
  } else if (state.screen === "waiting" || state.screen === "call") {
    $("media-state").textContent = i18n.error(message);
  }
}

function onWelcome(welcome) {
  if (welcome.site) $("site-name").textContent = `${welcome.site.name} · ${welcome.name}`;
  if (welcome.resumed === false && state.callId) {
    // Back too late: the server no longer holds this phone's place.
    media.closePeers();
    releaseMedia();
    showMessage("ended.title", t("phone.lost"));
  }
}

function showConnection({ state: connection }) {
  const banner = $("conn-state");
  banner.hidden = connection === "open" || connection === "idle" || state.ended;
  banner.dataset.i18n = connection === "reconnecting" ? "conn.reconnecting" : "conn.connecting";
  banner.textContent = t(banner.dataset.i18n); // data-i18n: a language switch rewrites it
  document.body.dataset.connection = connection;
}

function main() {
  i18n.apply();
  $("insecure-warning").hidden = mediaAvailable();
  $("lang-toggle").addEventListener("click", () => {
    i18n.setLang(i18n.lang === "zh-CN" ? "en" : "zh-CN");
    renderPlace();
    if (state.screen === "rating") rating.render();
  });
  $("cancel-call").addEventListener("click", () => {
    if (state.callId) signaling.send(MSG.CALL_CANCEL, { call_id: state.callId });
  });
  $("hang-up").addEventListener("click", () => {
    if (state.callId) signaling.send(MSG.CALL_HANGUP, { call_id: state.callId });
  });
  media.on("peer-state", ({ state: pcState }) => {
    $("media-state").textContent = pcState === "connected" ? "" : t("call.connectingMedia");
  });
  signaling.on("state", showConnection);
  signaling.on(MSG.WELCOME, onWelcome);
  signaling.on(MSG.CALL_QUEUED, showPosition);
  signaling.on(MSG.CALL_POSITION, showPosition);
  signaling.on(MSG.CALL_REQUEUED, (m) => {
    media.closePeers();
    showPosition(m);
  });
  signaling.on(MSG.CALL_CONNECTED, onConnected);
  signaling.on(MSG.CALL_ENDED, onEnded);
  signaling.on(MSG.SAVED, (m) => {
    if (m.what !== "rating") return;
    signaling.forgetResume();
    signaling.stop();
    showMessage("rating.title", t("phone.thanks"));
  });
  signaling.on(MSG.ERROR, onError);
  globalThis.vwin = { signaling, media };
  show("connecting");
  signaling.start();
}

main();
