// The kiosk's "I have an appointment": the code typed on a big on-screen keypad (no
// keyboard skills assumed), looked up (GET /api/appointments/{code}) for its matter, then
// handed to onArrive(queue, code), which sends call.request {queue, appointment}.

import { $, el } from "./dom.js";

/** The characters a code is made of (signaling/appointments.py CODE_ALPHABET). */
export const CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
export const CODE_LENGTH = 8;

export class AppointmentPad {
  #i18n;
  #onArrive;
  #code = "";

  constructor({ i18n, onArrive }) {
    this.#i18n = i18n;
    this.#onArrive = onArrive;
    const keys = [...CODE_ALPHABET].map((ch) => this.#key(ch, ch, () => this.#type(ch)));
    keys.push(this.#key("⌫", this.#i18n.t("appointment.backspace"), () => this.#erase(), "key wide"));
    $("code-keypad").replaceChildren(...keys);
    $("code-clear").addEventListener("click", () => this.reset());
    $("code-submit").addEventListener("click", () => this.#submit());
    this.#show();
  }

  #key(text, label, onPress, className = "key") {
    const button = el("button", { type: "button", className, textContent: text, "aria-label": label });
    button.addEventListener("click", onPress);
    return button;
  }

  #type(ch) {
    if (this.#code.length < CODE_LENGTH) this.#code += ch;
    this.#show();
  }

  #erase() {
    this.#code = this.#code.slice(0, -1);
    this.#show();
  }

  reset() {
    this.#code = "";
    this.#show();
  }

  /** Say why the code was not taken (a server `error`, in the visitor's language). */
  problem(text) {
    $("code-error").textContent = text;
  }

  #show() {
    const shown = this.#code.padEnd(CODE_LENGTH, "·");
    $("code-display").textContent = `${shown.slice(0, 4)} ${shown.slice(4)}`;
    $("code-submit").disabled = this.#code.length !== CODE_LENGTH;
    $("code-error").textContent = "";
  }

  async #submit() {
    const code = this.#code;
    try {
      const response = await fetch(`/api/appointments/${code}`, { headers: { Accept: "application/json" } });
      const data = await response.json();
      if (!response.ok) return this.problem(this.#i18n.error({ code: data.error === "not_found" ? "appointment_unknown" : data.error }));
      if (data.state !== "booked") return this.problem(this.#i18n.t(`appointment.state.${data.state}`));
      this.#onArrive(data.queue, code);
    } catch {
      this.problem(this.#i18n.t("chat.failed"));
    }
  }
}
