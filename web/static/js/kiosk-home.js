// The kiosk home screen: one big button per queue with its live figures, and
// the optional enterprise name + USCC (check character validated as typed).

import { openingLabel } from "./days.js";
import { $, el } from "./dom.js";
import { formatWait } from "./i18n.js";
import { usccError, usccProblem } from "./uscc.js";

const USCC_LENGTH = 18;

export class KioskHome {
  #i18n;
  #list;
  #name;
  #uscc;
  #hint;
  #queues = [];
  #status = new Map();
  #onChoose;

  /** onChoose(queueId, enterprise | null) is called when a queue button is pressed. */
  constructor({ i18n, onChoose }) {
    this.#i18n = i18n;
    this.#onChoose = onChoose;
    this.#list = $("queue-list");
    this.#name = $("ent-name");
    this.#uscc = $("ent-uscc");
    this.#hint = $("uscc-hint");
    this.#uscc.addEventListener("input", () => {
      const upper = this.#uscc.value.toUpperCase().replace(/\s+/g, "");
      if (upper !== this.#uscc.value) this.#uscc.value = upper;
      this.#showUsccState();
    });
    i18n.on("change", () => {
      this.render();
      this.#showUsccState();
    });
  }

  /** The queues this terminal offers (from `welcome`). */
  setQueues(queues) {
    this.#queues = queues;
    this.render();
  }

  /** Live figures from `queue.status`. */
  setStatus(items) {
    for (const item of items) this.#status.set(item.id, item);
    this.render();
  }

  statusOf(queueId) {
    return this.#status.get(queueId);
  }

  queueName(queueId) {
    return this.#i18n.name("queue", queueId);
  }

  /** Clear what the last visitor typed. */
  reset() {
    this.#name.value = "";
    this.#uscc.value = "";
    this.#showUsccState();
  }

  render() {
    const t = (key, params) => this.#i18n.t(key, params);
    if (this.#queues.length === 0) {
      this.#list.replaceChildren(el("p", { className: "lead", textContent: t("home.noQueues") }));
      return;
    }
    this.#list.replaceChildren(...this.#queues.map((queue) => {
      const status = this.#status.get(queue.id);
      const button = el("button", { type: "button", className: "queue-btn", dataset: { queue: queue.id } },
        el("span", { className: "q-name", textContent: this.queueName(queue.id) }),
        el("span", { className: "q-meta", textContent: this.#describe(status) }));
      button.disabled = status ? !status.open : false;
      button.addEventListener("click", () => this.#choose(queue.id));
      return button;
    }));
  }

  #describe(status) {
    const t = (key, params) => this.#i18n.t(key, params);
    if (!status) return "";
    if (status.opens_at) return t("queue.closedUntil", { hours: status.hours, when: openingLabel(this.#i18n, status.opens_at) });
    if (!status.open) return t("queue.closed");
    const waiting = t("queue.waiting", { n: status.waiting });
    const hours = status.hours ? ` · ${t("queue.hours", { hours: status.hours })}` : "";
    if (status.agents_available === 0 && status.waiting === 0) return `${waiting} · ${t("queue.noAgents")}${hours}`;
    return `${waiting} · ${t("queue.estimate", { wait: formatWait(this.#i18n, status.estimated_wait_s) })}${hours}`;
  }

  #showUsccState() {
    const code = this.#uscc.value;
    this.#hint.classList.remove("ok", "error");
    this.#uscc.removeAttribute("aria-invalid");
    if (code.length === 0) {
      this.#hint.textContent = "";
      return;
    }
    const problem = code.length < USCC_LENGTH ? partialError(code) : usccProblem(code);
    if (problem) {
      this.#hint.textContent = this.#i18n.t("uscc.invalid", { detail: this.#i18n.t(`uscc.rule.${problem.rule}`, problem) });
      this.#hint.classList.add("error");
      this.#uscc.setAttribute("aria-invalid", "true");
    } else if (code.length < USCC_LENGTH) {
      this.#hint.textContent = this.#i18n.t("uscc.remaining", { n: USCC_LENGTH - code.length });
    } else {
      this.#hint.textContent = this.#i18n.t("uscc.ok");
      this.#hint.classList.add("ok");
    }
  }

  #choose(queueId) {
    const name = this.#name.value.trim();
    const uscc = this.#uscc.value.trim();
    if (uscc && usccError(uscc)) {
      this.#hint.textContent = this.#i18n.t("uscc.blocked");
      this.#hint.classList.add("error");
      this.#uscc.focus();
      return;
    }
    const enterprise = name || uscc ? { ...(name && { name }), ...(uscc && { uscc }) } : null;
    this.#onChoose(queueId, enterprise);
  }
}

/** A bad character is worth reporting before all 18 are typed; the length is not. */
function partialError(code) {
  const padded = code + "0".repeat(USCC_LENGTH - code.length);
  const problem = usccProblem(padded);
  return problem && problem.position !== undefined && problem.position !== USCC_LENGTH ? problem : null;
}
