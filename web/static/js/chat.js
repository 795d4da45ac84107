// The in-call chat panel shared by kiosk and console: a log (role="log", so
// screen readers announce new lines) and a form that sends `chat.send`.

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
    signaling.on("chat.message", (m) => {
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

  #send() {
    const text = this.#input.value.trim();
    if (!text || !this.#callId) return;
    if (this.#signaling.send("chat.send", { call_id: this.#callId, text })) {
      this.#input.value = "";
    } else {
      this.#note(this.#labels.failed());
    }
  }

  #append(message) {
    const mine = message.from === this.#you;
    const line = document.createElement("p");
    line.className = mine ? "chat-line mine" : "chat-line";
    const who = document.createElement("strong");
    who.textContent = mine ? this.#labels.you() : message.name;
    who.translate = mine; // a person's name is not translated
    const said = document.createElement("span");
    said.textContent = ` ${message.text}`;
    said.translate = false; // what people write stays as written
    line.append(who, said);
    this.#log.append(line);
    this.#log.scrollTop = this.#log.scrollHeight;
  }

  #note(text) {
    const line = document.createElement("p");
    line.className = "chat-line note";
    line.textContent = text;
    this.#log.append(line);
  }
}
