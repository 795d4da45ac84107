// The kiosk's "continue on your phone" panel: while a visitor waits, a QR code of the
// page a phone opens to take the call over (`call.handoff` -> `call.handoff_ready`; the
// server draws the code: GET <url>/qr.svg). A ticket lasts ten minutes: a new one is
// asked for a little before, for as long as the visitor waits here.

import { $ } from "./dom.js";
import { MSG } from "./signaling.js";

/** Ask for the next ticket this long before the current one expires. */
const RENEW_BEFORE_MS = 30_000;

export class HandoffPanel {
  #signaling;
  #callId = null;
  #renewTimer = null;

  constructor({ signaling }) {
    this.#signaling = signaling;
    signaling.on(MSG.CALL_HANDOFF_READY, (m) => this.#show(m));
  }

  /** The visitor waits with this call: offer it to a phone (once per call). */
  offer(callId) {
    if (this.#callId === callId) return;
    this.reset();
    this.#callId = callId;
    this.#signaling.send(MSG.CALL_HANDOFF, { call_id: callId });
  }

  /** No call waits here any more: no code on screen. */
  reset() {
    clearTimeout(this.#renewTimer);
    this.#callId = null;
    const panel = $("handoff");
    panel.hidden = true;
    delete panel.dataset.url;
    $("handoff-qr").removeAttribute("src");
  }

  #show(message) {
    if (message.call_id !== this.#callId) return;
    const panel = $("handoff");
    panel.dataset.url = new URL(message.url, window.location.href).href;
    $("handoff-qr").src = `${message.url}/qr.svg`;
    panel.hidden = false;
    clearTimeout(this.#renewTimer);
    const renewIn = Date.parse(message.expires_at) - Date.now() - RENEW_BEFORE_MS;
    this.#renewTimer = setTimeout(() => {
      if (this.#callId === message.call_id) this.#signaling.send(MSG.CALL_HANDOFF, { call_id: message.call_id });
    }, Math.max(renewIn, 1000));
  }
}
