// Joint actions and pending matters in the console: start an action for the
// caller's enterprise, sign or reject our department's steps as `action.updated`
// arrives, and open a pending matter for what the session cannot finish.

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { pageI18n } from "./i18n.js";
import { MSG } from "./signaling.js";
import { usccProblem } from "./uscc.js";

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);

export class JointPanel {
  #signaling;
  #me;
  #types = new Map();
  #actions = new Map();
  #enterprises = new Map();
  #call = null;

  /** me: () => the /api/me answer (for our department). */
  constructor({ signaling, me }) {
    this.#signaling = signaling;
    this.#me = me;
    // An invitation into another department's call is offered under its own id; the call
    // it joins is the one `call.connected` names.
    signaling.on(MSG.CALL_OFFERED, (m) => this.#enterprises.set(m.joins ?? m.call_id, m.enterprise ?? null));
    signaling.on(MSG.CALL_CONNECTED, (m) => this.#open(m));
    signaling.on(MSG.ACTION_UPDATED, (m) => this.#updated(m));
    signaling.on(MSG.ERROR, (m) => {
      if (m.refused?.startsWith("action.")) this.#status(i18n.error(m));
    });
    $("action-type").addEventListener("change", () => this.#renderFields());
    $("action-form").addEventListener("submit", (e) => this.#start(e));
    $("matter-form").addEventListener("submit", (e) => this.#openMatter(e));
    $("action-uscc").addEventListener("input", () => this.#checkUscc());
    this.#loadTypes().catch((err) => this.#status(t("console.joint.typesFailed", { error: i18n.error(err) })));
  }

  async #loadTypes() {
    const { types } = await api("/api/action-types");
    for (const type of types) this.#types.set(type.id, type);
    $("action-type").replaceChildren(...types.map((type) => el("option", { value: type.id, textContent: i18n.name("action", type.id) })));
    this.#renderFields();
  }

  #status(text) {
    $("joint-status").textContent = text;
  }

  #open(message) {
    if (this.#call?.call_id === message.call_id) return;
    this.#call = { call_id: message.call_id, session_id: message.session_id };
    this.#actions.clear();
    $("action-list").replaceChildren();
    const enterprise = this.#enterprises.get(message.call_id);
    for (const [input, value] of [["action-name", enterprise?.name], ["action-uscc", enterprise?.uscc],
      ["matter-name", enterprise?.name], ["matter-uscc", enterprise?.uscc]]) {
      $(input).value = value ?? "";
    }
    $("matter-department").value = this.#me()?.department ?? "";
    this.#status("");
  }

  #renderFields() {
    const type = this.#types.get($("action-type").value);
    $("action-fields").replaceChildren(...(type?.fields ?? []).flatMap((name) => [
      el("label", { for: `action-field-${name}`, textContent: i18n.code("action_field", name) }),
      el("input", { id: `action-field-${name}`, name, required: true, maxLength: 500, dataset: { field: name } }),
    ]));
  }

  #checkUscc() {
    const code = $("action-uscc").value.trim();
    const problem = code ? usccProblem(code) : null;
    $("action-uscc-error").textContent = problem ? t(`uscc.rule.${problem.rule}`, problem) : "";
    $("action-uscc").setAttribute("aria-invalid", String(Boolean(problem)));
    return problem;
  }

  #start(event) {
    event.preventDefault();
    if (!this.#call || this.#checkUscc()) return;
    const fields = {};
    for (const input of $("action-fields").querySelectorAll("input")) fields[input.dataset.field] = input.value.trim();
    const sent = this.#signaling.send(MSG.ACTION_START, {
      call_id: this.#call.call_id, action: $("action-type").value, fields,
      enterprise: { name: $("action-name").value.trim(), uscc: $("action-uscc").value.trim() },
    });
    this.#status(t(sent ? "console.joint.starting" : "console.notConnected"));
  }

  #updated(action) {
    this.#actions.set(action.action_id, action);
    const rows = [...this.#actions.values()].map((a) => this.#row(a));
    $("action-list").replaceChildren(...rows);
    this.#status(`${i18n.name("action", action.action)}: ${i18n.code("action_state", action.state)}`);
  }

  #row(action) {
    const mine = this.#me()?.department;
    const open = action.state === "open";
    const steps = action.steps.map((step) => {
      const item = el("li", { dataset: { step: step.id } },
        `${i18n.name("step", `${action.action}.${step.id}`)} (${i18n.name("department", step.department)}): `,
        el("strong", {}, ...(step.signed_by
          ? [t("console.joint.signedBy"), " ", el("span", { translate: false, textContent: step.signed_by })]
          : [t("console.joint.notSigned")])));
      if (open && !step.signed_by && step.department === mine) {
        const sign = el("button", { type: "button", className: "btn success small", textContent: t("console.joint.sign") });
        sign.addEventListener("click", () => this.#signaling.send(MSG.ACTION_SIGN, { action_id: action.action_id, step: step.id }));
        item.append(" ", sign);
      }
      return item;
    });
    const row = el("li", { className: `joint-action state-${action.state}`, dataset: { action: action.action_id } },
      el("p", {}, el("strong", { textContent: i18n.name("action", action.action) }), " — ",
        el("span", { translate: false, textContent: `${action.enterprise.name} (${action.enterprise.uscc})` }), " ",
        el("span", { className: `badge state-${action.state}`, textContent: i18n.code("action_state", action.state) })),
      el("ul", {}, ...steps));
    if (action.reason) {
      row.append(el("p", { className: "note" }, t("console.joint.reason"), " ",
        el("span", { translate: false, textContent: action.reason })));
    }
    if (open && action.steps.some((s) => s.department === mine)) {
      const reject = el("button", { type: "button", className: "btn danger small", textContent: t("console.joint.reject") });
      reject.addEventListener("click", () => {
        const reason = window.prompt(t("console.joint.rejectPrompt"));
        if (reason?.trim()) this.#signaling.send(MSG.ACTION_REJECT, { action_id: action.action_id, reason: reason.trim() });
      });
      row.append(reject);
    }
    return row;
  }

  async #openMatter(event) {
    event.preventDefault();
    const form = event.currentTarget;
    if (!form.reportValidity()) return;
    const uscc = $("matter-uscc").value.trim();
    const body = {
      enterprise: { name: $("matter-name").value.trim(), uscc: uscc || null },
      description: $("matter-description").value.trim(),
      class: $("matter-class").value,
      department: $("matter-department").value.trim() || null,
      session_id: this.#call?.session_id ?? null,
    };
    try {
      const { matter } = await api("/api/matters", { method: "POST", body });
      $("matter-description").value = "";
      this.#status(t("console.matter.opened", { department: i18n.name("department", matter.department), due: matter.due }));
    } catch (err) {
      this.#status(t("console.matter.failed", { error: i18n.error(err) }));
    }
  }
}
