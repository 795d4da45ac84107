// Forms in the console: for each joint action of the call whose type has a form, a
// button presents it to the visitor (`form.present`); `form.presented`, `form.signed` and
// `form.declined` then tell how it stands.

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { pageI18n } from "./i18n.js";
import { MSG } from "./signaling.js";

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);

export class ConsoleForms {
  #signaling;
  #withForm = new Set(); // action types that name a form
  #actions = new Map(); // action id -> { action, form_id, state }
  #call = null;

  constructor({ signaling }) {
    this.#signaling = signaling;
    signaling.on(MSG.CALL_CONNECTED, (m) => {
      if (this.#call === m.call_id) return;
      this.#call = m.call_id;
      this.#actions.clear();
      this.#render();
    });
    signaling.on(MSG.ACTION_UPDATED, (m) => this.#action(m));
    signaling.on(MSG.FORM_PRESENTED, (m) => this.#form(m.action_id, m.form_id, "presented"));
    signaling.on(MSG.FORM_SIGNED, (m) => this.#byForm(m.form_id, "signed", m.sha256));
    signaling.on(MSG.FORM_DECLINED, (m) => this.#byForm(m.form_id, "declined"));
    signaling.on(MSG.ERROR, (m) => {
      if (m.refused?.startsWith("form.")) $("joint-status").textContent = i18n.error(m);
    });
    api("/api/action-types").then(({ types }) => {
      for (const type of types) if (type.form) this.#withForm.add(type.id);
      this.#render();
    }).catch(() => {});
  }

  #action(message) {
    if (message.call_id !== this.#call) return;
    const known = this.#actions.get(message.action_id);
    this.#actions.set(message.action_id, { ...known, action: message.action, open: message.state !== "rejected" });
    this.#render();
  }

  #form(actionId, formId, state, sha256) {
    const known = this.#actions.get(actionId);
    if (!known) return;
    this.#actions.set(actionId, { ...known, form_id: formId, state, sha256 });
    $("joint-status").textContent = t(`console.form.${state}`);
    this.#render();
  }

  #byForm(formId, state, sha256) {
    for (const [actionId, entry] of this.#actions) {
      if (entry.form_id === formId) this.#form(actionId, formId, state, sha256);
    }
  }

  #render() {
    const rows = [...this.#actions].filter(([, a]) => this.#withForm.has(a.action)).map(([id, a]) => {
      const present = el("button", { type: "button", className: "btn secondary small", textContent: t("console.form.present"),
        disabled: !a.open || a.state === "presented" || a.state === "signed", dataset: { present: id } });
      present.addEventListener("click", () => this.#signaling.send(MSG.FORM_PRESENT, { call_id: this.#call, action_id: id }));
      const state = a.state ? i18n.code("form_state", a.state) : "";
      return el("li", { dataset: { action: id, formState: a.state ?? "" } },
        el("strong", { textContent: i18n.name("action", a.action) }), " ", present, " ",
        el("span", { className: `badge form-${a.state ?? "none"}`, textContent: state }),
        a.sha256 ? el("span", { className: "mono note", translate: false, textContent: ` SHA-256 ${a.sha256.slice(0, 16)}…` }) : null);
    });
    $("form-list").replaceChildren(...rows);
  }
}
