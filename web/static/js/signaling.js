// The shared signalling client of the kiosk and the console (protocol v1 over /ws).
//
// SignalingClient owns one WebSocket: hello/welcome, the resume token, a ping
// every 10 s, reconnection with backoff, and an event-emitter API (one event
// per message type plus "state", "welcome", "message", "unauthorized", and
// "stopped" when the server closed with a code that makes retrying pointless).
// PeerSession (peer.js) and CallMedia (call.js) build the calls on top of it;
// MSG names every message type for all of them.

import { Emitter } from "./emitter.js";

/**
 * The protocol's message types (signaling/messages.py, docs/protocol.md), one name each:
 * pages send and listen with these, never with string literals (a test checks the list).
 */
export const MSG = Object.freeze({
  HELLO: "hello",
  PING: "ping",
  CALL_REQUEST: "call.request",
  CALL_CANCEL: "call.cancel",
  AGENT_STATUS: "agent.status",
  CALL_ACCEPT: "call.accept",
  CALL_DECLINE: "call.decline",
  CALL_HANGUP: "call.hangup",
  AGENT_WRAPUP_DONE: "agent.wrapup_done",
  CALL_INVITE: "call.invite",
  CALL_TRANSFER: "call.transfer",
  RTC_DESCRIPTION: "rtc.description",
  RTC_CANDIDATE: "rtc.candidate",
  CHAT_SEND: "chat.send",
  SESSION_RATE: "session.rate",
  SESSION_WRAPUP: "session.wrapup",
  ACTION_START: "action.start",
  ACTION_SIGN: "action.sign",
  ACTION_REJECT: "action.reject",
  FORM_PRESENT: "form.present",
  FORM_SIGN: "form.sign",
  FORM_DECLINE: "form.decline",
  WELCOME: "welcome",
  ERROR: "error",
  PONG: "pong",
  QUEUE_STATUS: "queue.status",
  CALL_QUEUED: "call.queued",
  CALL_POSITION: "call.position",
  CALL_REJECTED: "call.rejected",
  CALL_REQUEUED: "call.requeued",
  CALL_OFFERED: "call.offered",
  CALL_WITHDRAWN: "call.withdrawn",
  CALL_CONNECTED: "call.connected",
  CALL_ENDED: "call.ended",
  CHAT_MESSAGE: "chat.message",
  INVITATION: "invitation",
  PARTICIPANT_RECONNECTED: "participant.reconnected",
  SAVED: "saved",
  ACTION_UPDATED: "action.updated",
  PARTICIPANT_JOINED: "participant.joined",
  PARTICIPANT_LEFT: "participant.left",
  ICE_SERVERS: "ice.servers",
  CALL_HANDOFF: "call.handoff",
  CALL_HANDOFF_READY: "call.handoff_ready",
  CALL_HANDED_OFF: "call.handed_off",
  // captured documents (issue 14)
  DOCUMENT_REQUEST: "document.request",
  DOCUMENT_ADDED: "document.added",
  FORM_PRESENTED: "form.presented",
  FORM_SIGNED: "form.signed",
  FORM_DECLINED: "form.declined",
});

/** Why 10 s: the server drops a client silent for 30 s; three chances per window. */
const PING_INTERVAL_MS = 10_000;
/** No frame at all for this long means the socket is dead even if TCP has not noticed. */
const SILENCE_LIMIT_MS = 25_000;
/**
 * Reconnect delays double from 0.5 s up to 5 s: outages are usually brief, and after
 * a server restart a kiosk must be back within a few seconds of the server answering.
 * Each delay is drawn between half and all of its step, so a room of kiosks that lost
 * the server together does not knock on its door together.
 */
const BACKOFF_FIRST_MS = 500;
const BACKOFF_CAP_MS = 5000;

/** The delay before reconnection attempt `attempt` (0, 1, ...); `random` in [0, 1). */
export function backoffDelay(attempt, random = Math.random()) {
  const step = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * 2 ** Math.min(attempt, 16));
  return step / 2 + random * (step / 2);
}
/** Close codes after which retrying cannot help (server/ws.py, signaling/memory.py). */
const FINAL_CLOSE_CODES = new Map([
  [4401, "unauthorized"], // bad, expired or revoked credentials
  [4403, "forbidden"], // this account may not use signalling
  [4409, "replaced"], // the same terminal/specialist connected elsewhere
  [4410, "revoked"], // the terminal was revoked
  [4411, "logged_out"], // server/revocation.py: log in again
  [4412, "expired"],
  [4413, "password_changed"],
  [4414, "disabled"],
]);

/**
 * 1012 ("service restart"): a node drains, or moves some of its clients to a less loaded
 * node (server/cluster/rebalance.py). The service is there, on another node: the client
 * reconnects as after any loss, but for `MOVE_GRACE_MS` the page is not told (its state
 * stays "open", no banner), and what it sends meanwhile goes out after the new welcome
 * (at most `MOVE_HELD_MAX` messages). A move that takes longer is shown as a loss.
 */
const MOVE_CLOSE_CODE = 1012;
const MOVE_GRACE_MS = 3000;
const MOVE_HELD_MAX = 64;

/**
 * How many of the calls that ended the client remembers: a `call.connected` re-sent on
 * resume (`resumed: true`) for one of them crossed its hang-up and is not passed on, nor a
 * caller's late one (its cancel overtook the answer: it heard it from the cancel) (the
 * server orders a re-sync before what is decided after it; this is the pages' own guard:
 * the console, the kiosk and the phone, and CallMedia, all listen through this client).
 */
const ENDED_KEPT = 16;

/** A `call.connected` to the call's caller (the kiosk, or the phone it handed off to). */
function callerTold(message) {
  return message.participants.some((p) => p.id === message.you && (p.role === "terminal" || p.role === "visitor"));
}

/** Where the resume token lives: localStorage for the kiosk (survives a reload). */
export function storageSlot(storage, key) {
  return {
    get: () => storage.getItem(key),
    set: (value) => (value ? storage.setItem(key, value) : storage.removeItem(key)),
  };
}

export function defaultWsUrl(location = window.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

/**
 * States: "idle" -> "connecting" -> "open"; on loss "reconnecting" -> "open";
 * "closed" after stop() or when the server refuses our credentials.
 */
export class SignalingClient extends Emitter {
  #url;
  #getToken;
  #resume;
  #ws = null;
  #state = "idle";
  #attempt = 0;
  #pingTimer = null;
  #retryTimer = null;
  #lastFrameAt = 0;
  #welcome = null;
  #moving = null; // during a move (1012): its grace timer; `#held`, what the page sent
  #held = [];
  #ended = new Set(); // the last ENDED_KEPT call ids heard ended, oldest first
  #current = null; // the call this client is in or waits for, named in a resuming hello
  #onOnline = () => this.#reconnectNow();
  #onOffline = () => this.#drop("browser went offline");

  /**
   * getToken: async () => string, called before every hello (a console ticket is
   * single-use). resumeStore: {get(), set(value)}.
   */
  constructor({ getToken, resumeStore, url = defaultWsUrl() }) {
    super();
    this.#url = url;
    this.#getToken = getToken;
    this.#resume = resumeStore ?? { value: null, get() { return this.value; }, set(v) { this.value = v; } };
  }

  get state() {
    return this.#state;
  }

  /** The last `welcome` (role, id, participant_id, name, queues, ice_servers, site). */
  get welcome() {
    return this.#welcome;
  }

  start() {
    window.addEventListener("online", this.#onOnline);
    window.addEventListener("offline", this.#onOffline);
    this.#connect();
  }

  stop() {
    window.removeEventListener("online", this.#onOnline);
    window.removeEventListener("offline", this.#onOffline);
    clearTimeout(this.#retryTimer);
    this.#stopPing();
    this.#endMove();
    this.#setState("closed");
    this.#ws?.close(1000, "bye");
    this.#ws = null;
  }

  /** Forget the resume token (the kiosk does it when it is reset). */
  forgetResume() {
    this.#resume.set(null);
  }

  /** Send one message; false when the socket is not open (the caller shows it). */
  send(type, fields = {}) {
    if (this.#moving) {
      if (this.#held.length >= MOVE_HELD_MAX) return false;
      this.#held.push(JSON.stringify({ type, ...fields }));
      return true;
    }
    if (this.#state !== "open" || this.#ws?.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify({ type, ...fields }));
    return true;
  }

  #setState(next) {
    if (next === this.#state) return;
    const previous = this.#state;
    this.#state = next;
    this.emit("state", { state: next, previous });
  }

  async #connect() {
    clearTimeout(this.#retryTimer);
    if (this.#state === "closed") return;
    if (!this.#moving) this.#setState(this.#welcome ? "reconnecting" : "connecting");
    let token;
    try {
      token = await this.#getToken();
    } catch (err) {
      this.emit("token-error", err);
      if (err?.fatal) {
        this.#setState("closed");
        return;
      }
      this.#scheduleReconnect();
      return;
    }
    if (this.#state === "closed") return;
    const ws = new WebSocket(this.#url);
    this.#ws = ws;
    ws.addEventListener("open", () => {
      const hello = { token };
      const resume = this.#resume.get();
      if (resume) hello.resume = resume;
      // Its end, if it ended while the socket was away, is told on resume (the call.ended
      // sent meanwhile reached no socket).
      if (resume && this.#current) hello.call_id = this.#current;
      ws.send(JSON.stringify({ type: MSG.HELLO, ...hello }));
    });
    ws.addEventListener("message", (event) => this.#onFrame(ws, event.data));
    ws.addEventListener("close", (event) => this.#onClose(ws, event));
  }

  #onFrame(ws, data) {
    if (ws !== this.#ws) return;
    this.#lastFrameAt = Date.now();
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      console.warn("ignoring a frame that is not JSON");
      return;
    }
    if (message.type === MSG.WELCOME) {
      this.#welcome = message;
      this.#resume.set(message.resume);
      this.#attempt = 0;
      const held = this.#held;
      this.#endMove();
      for (const frame of held) ws.send(frame); // sent before the move ended, so first
      this.#setState("open");
      this.#startPing();
      this.emit("welcome", message);
      return;
    }
    if (message.type === MSG.ICE_SERVERS && this.#welcome) {
      // Fresh TURN credentials: new peers and the next ICE restart use them.
      this.#welcome = { ...this.#welcome, ice_servers: message.ice_servers };
    }
    if (message.type === MSG.ERROR && message.code === "unauthorized") {
      this.#resume.set(null);
    }
    // A specialist joined anew (invited into the call again): its next end is news. A caller
    // never joins an ended call again: its connected came late (a cancel overtook it).
    if (message.type === MSG.CALL_CONNECTED && !message.resumed && !callerTold(message)) {
      this.#ended.delete(message.call_id);
    }
    if (message.type === MSG.CALL_ENDED) {
      if (this.#ended.has(message.call_id)) return; // told again on resume: heard already
      this.#remember(message.call_id);
      if (message.call_id === this.#current) this.#current = null;
    }
    if (message.type === MSG.CALL_QUEUED || message.type === MSG.CALL_CONNECTED) {
      if (!this.#ended.has(message.call_id)) this.#current = message.call_id;
    }
    if (message.type === MSG.CALL_HANDED_OFF && message.call_id === this.#current) this.#current = null;
    if (message.type === MSG.CALL_CONNECTED && this.#ended.has(message.call_id)) {
      console.warn(`ignoring call.connected for ${message.call_id}: it ended`);
      return;
    }
    this.emit(message.type, message);
    this.emit("message", message);
  }

  #remember(callId) {
    this.#ended.delete(callId);
    this.#ended.add(callId);
    if (this.#ended.size > ENDED_KEPT) this.#ended.delete(this.#ended.values().next().value);
  }

  #onClose(ws, event) {
    if (ws !== this.#ws) return;
    this.#ws = null;
    this.#stopPing();
    if (this.#state === "closed") return;
    const final = FINAL_CLOSE_CODES.get(event.code);
    if (final) {
      this.#endMove();
      this.#setState("closed");
      this.emit("stopped", { why: final, code: event.code, reason: event.reason });
      if (final === "unauthorized" || final === "revoked") this.emit("unauthorized", { reason: event.reason });
      return;
    }
    if (event.code === MOVE_CLOSE_CODE && this.#state === "open" && !this.#moving) {
      this.#moving = setTimeout(() => this.#moveTooLong(), MOVE_GRACE_MS);
    }
    if (!this.#moving) this.#setState(this.#welcome ? "reconnecting" : "connecting");
    this.#scheduleReconnect();
  }

  /** The move outlasted its grace: a loss like any other (what was held is dropped, as
   * what is written into a dying socket is). */
  #moveTooLong() {
    this.#endMove();
    if (this.#state === "open") this.#setState("reconnecting");
  }

  #endMove() {
    clearTimeout(this.#moving);
    this.#moving = null;
    this.#held = [];
  }

  #scheduleReconnect() {
    const delay = backoffDelay(this.#attempt);
    this.#attempt += 1;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #reconnectNow() {
    if (this.#state === "open" || this.#state === "closed") return;
    this.#attempt = 0;
    this.#connect();
  }

  /** Close a socket we know is useless (network gone, silence) and start reconnecting. */
  #drop(reason) {
    if (!this.#ws) return;
    console.info(`signalling: dropping the socket (${reason})`);
    const ws = this.#ws;
    this.#onClose(ws, { code: 1006 });
    ws.close(4000, reason);
  }

  #startPing() {
    this.#stopPing();
    this.#pingTimer = setInterval(() => {
      if (Date.now() - this.#lastFrameAt > SILENCE_LIMIT_MS) {
        this.#drop("no frame from the server");
        return;
      }
      this.send(MSG.PING);
    }, PING_INTERVAL_MS);
  }

  #stopPing() {
    clearInterval(this.#pingTimer);
    this.#pingTimer = null;
  }
}
