// The forms of one session on the manager's session page: who presented each, whether the
// visitor signed or refused, the signed PDF's hash and its download (GET /api/forms/{id}).

import { api, formatDateTime } from "./api.js";
import { el } from "./dom.js";
import { pageI18n } from "./i18n.js";

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);

function row(form) {
  return el("li", { dataset: { form: form.id, state: form.state } },
    el("strong", { textContent: i18n.code("form_state", form.state) }), " · ",
    el("span", { translate: false, textContent: form.template }), " · ",
    el("time", { dateTime: form.closed_at ?? form.presented_at, textContent: formatDateTime(form.closed_at ?? form.presented_at) }),
    form.sha256 ? el("span", { className: "mono muted", translate: false, textContent: ` SHA-256 ${form.sha256}` }) : null,
    form.url ? el("span", {}, " ", el("a", { href: form.url, download: `form-${form.id}.pdf`, textContent: t("manage.session.formDownload") })) : null);
}

/** Fill `section` with the forms of session `id`; a failure leaves a line saying so. */
export async function mountForms(section, id) {
  const list = el("ul", { className: "plain-list" });
  section.append(list);
  try {
    const { forms } = await api(`/api/sessions/${encodeURIComponent(id)}/forms`);
    list.replaceChildren(...(forms.length ? forms.map(row) : [el("li", { className: "muted", textContent: t("manage.session.noForms") })]));
  } catch (err) {
    list.replaceChildren(el("li", { className: "error", textContent: t("common.loadFailed", { error: i18n.error(err) }) }));
  }
}
