// A kiosk's call request until its reply. A socket lost just after the request was
// written may have lost the request with it: when the socket is back before any reply,
// the request goes again with the same `request_id`, and the server answers with the
// call the first send made, never a second one (docs/protocol.md, `call.request`).
import { MSG } from "./signaling.js";

/** A key for one request (getRandomValues works outside a secure context too). */
function requestId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class PendingRequest {
  #fields = null;
  #resent = false;

  /** Sends a new request; false when the socket could not take it. */
  send(signaling, fields) {
    const request = { ...fields, request_id: requestId() };
    const sent = signaling.send(MSG.CALL_REQUEST, request);
    this.#fields = sent ? request : null;
    this.#resent = false;
    return sent;
  }

  /** The socket is back before the reply: the same request again (true when sent). */
  again(signaling) {
    if (!this.#fields) return false;
    this.#resent = true;
    signaling.send(MSG.CALL_REQUEST, this.#fields);
    return true;
  }

  /** A reply came (queued, connected, rejected, refused): nothing to send again. */
  settled() {
    this.#fields = null;
  }

  /** A refusal that is not news for this visit: of an earlier request (a late copy, its
   * call over: `request_done`), or of the request sent again that its first send's call
   * explains (that call's news follows). */
  explains(message) {
    if (message.request_id && message.request_id !== this.#fields?.request_id) return true;
    return this.#resent && ["call_in_progress", "appointment_used"].includes(message.code);
  }
}
