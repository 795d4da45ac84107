// The in-call chat panel shared by kiosk and console: a log (role="log", so
// screen readers announce new lines) and a form that sends `chat.send`.

import { el } from "./dom.js";
import { MSG } from "./signaling.js";

export class ChatPanel {
  #signaling;
  #log;
  #input;
  #callId = null;
  #you = null;
  #labels;

  /** root: element holding .chat-log, form.chat-form and its input; labels: {you, failed}. */
  constructor({ root, signaling, labels }) {
    this.#signaling = signaling;
    this.#log = root.querySelector(".chat-log");
    this.#input = root.querySelector(".chat-form input");
    this.#labels = labels;
    root.querySelector(".chat-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#send();
    });
    signaling.on(MSG.CHAT_MESSAGE, (m) => {
      if (m.call_id === this.#callId) this.#append(m);
    });
  }

  /** Start a fresh transcript for a call (`call.connected`). A resumed call keeps its lines. */
  open(callId, you, { keep = false } = {}) {
    if (!keep || callId !== this.#callId) this.#log.replaceChildren();
    this.#callId = callId;
    this.#you = you;
  }

  close() {
    this.#callId = null;
  }

  /** Forget the transcript and anything typed (the kiosk forgets its visitor). */
  clear() {
    this.close();
    this.#log.replaceChildren();
    this.#input.value = "";
  }

  #send() {
    const text = this.#input.value.trim();
    if (!text || !this.#callId) return;
    if (this.#signaling.send(MSG.CHAT_SEND, { call_id: this.#callId, text })) {
      this.#input.value = "";
    } else {
      this.#note(this.#labels.failed());
    }
  }

  #append(message) {
    const mine = message.from === this.#you;
    const who = el("strong", { textContent: mine ? this.#labels.you() : message.name, translate: mine });
    // What people write, and their names, stay as written.
    const said = el("span", { textContent: ` ${message.text}`, translate: false });
    this.#log.append(el("p", { className: mine ? "chat-line mine" : "chat-line" }, who, said));
    this.#log.scrollTop = this.#log.scrollHeight;
  }

  #note(text) {
    this.#log.append(el("p", { className: "chat-line note", textContent: text }));
  }
}
