// Invite and transfer in the console: bring a department's queue or a named
// specialist into the call (`call.invite`), or hand the caller over
// (`call.transfer`), and show how the invitation goes (`invitation`, `error`).

import { $, el } from "./dom.js";
import { pageI18n } from "./i18n.js";
import { MSG } from "./signaling.js";

const REQUESTS = new Set([MSG.CALL_INVITE, MSG.CALL_TRANSFER]);
const i18n = pageI18n();

export class InvitePanel {
  #signaling;
  #t;
  #callId = null;
  #queues = [];

  /** t(key, params): the console's wording. */
  constructor({ signaling, t }) {
    this.#signaling = signaling;
    this.#t = t;
    const form = $("invite-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#send(event.submitter?.value === "transfer" ? MSG.CALL_TRANSFER : MSG.CALL_INVITE);
    });
    for (const input of form.elements.target) input.addEventListener("change", () => this.#syncTarget());
    for (const [id, target] of [["invite-specialist", "specialist"], ["invite-queue", "queue"]]) {
      $(id).addEventListener("focus", () => {
        form.elements.target.value = target;
        this.#syncTarget();
      });
    }
    signaling.on(MSG.INVITATION, (m) => this.#onInvitation(m));
    signaling.on(MSG.ERROR, (m) => {
      if (REQUESTS.has(m.refused) && (!m.call_id || m.call_id === this.#callId)) this.#refused(m);
    });
    this.label();
  }

  /** Fill the static wording (and again when the language changes). */
  label() {
    const t = this.#t;
    $("invite-title").textContent = t("invite.title");
    $("invite-target-label").textContent = t("invite.target");
    $("invite-by-queue").textContent = t("invite.byQueue");
    $("invite-by-name").textContent = t("invite.byName");
    $("invite-send").textContent = t("invite.send");
    $("transfer-send").textContent = t("transfer.send");
    $("invite-specialist").placeholder = t("invite.pickName");
    this.#renderQueues();
  }

  /** Every queue the switchboard knows (from `queue.status`): any department may be invited. */
  setQueues(queues) {
    const ids = queues.map((q) => `${q.id}:${q.name}:${q.open}`).join("|");
    if (ids === this.#queues.map((q) => `${q.id}:${q.name}:${q.open}`).join("|")) return;
    this.#queues = queues;
    this.#renderQueues();
  }

  open(callId) {
    if (callId !== this.#callId) this.#status("");
    this.#callId = callId;
  }

  close() {
    this.#callId = null;
    $("invite-form").reset();
    this.#status("");
    this.#syncTarget();
  }

  #renderQueues() {
    const select = $("invite-queue");
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "", textContent: this.#t("invite.pickQueue") }),
      ...this.#queues.map((q) => el("option", { value: q.id, textContent: i18n.name("queue", q.id), disabled: !q.open })));
    if (this.#queues.some((q) => q.id === chosen)) select.value = chosen;
  }

  #syncTarget() {
    const byQueue = $("invite-form").elements.target.value === "queue";
    $("invite-queue").setAttribute("aria-disabled", String(!byQueue));
    $("invite-specialist").setAttribute("aria-disabled", String(byQueue));
  }

  #send(type) {
    if (!this.#callId) return;
    const byQueue = $("invite-form").elements.target.value === "queue";
    const target = byQueue ? $("invite-queue").value : $("invite-specialist").value.trim();
    if (!target) {
      this.#status(this.#t(byQueue ? "invite.pickQueue" : "invite.pickName"));
      return;
    }
    const fields = { call_id: this.#callId, [byQueue ? "queue" : "specialist"]: target };
    if (!this.#signaling.send(type, fields)) this.#status(this.#t("invite.notConnected"));
  }

  #target(message) {
    if (message.specialist) return message.specialist;
    return this.#t("invite.queueTarget", { queue: i18n.name("queue", message.queue) });
  }

  #onInvitation(message) {
    if (message.call_id !== this.#callId) return;
    const prefix = message.transfer && ["ringing", "accepted"].includes(message.state) ? "transfer" : "invite";
    const key = `${prefix}.${message.state}`;
    const text = this.#t(key, { target: this.#target(message) });
    this.#status(text === key ? this.#t("invite.other", { state: i18n.code("invitation_state", message.state) }) : text);
    $("invite-form").dataset.state = message.state;
  }

  #refused(message) {
    const key = `refused.${message.code}`;
    const reason = this.#t(key);
    this.#status(this.#t("invite.refused", { reason: reason === key ? i18n.error(message) : reason }));
    $("invite-form").dataset.state = "refused";
  }

  #status(text) {
    $("invite-status").textContent = text;
  }
}
