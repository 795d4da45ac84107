// The manager's session page: the materials the specialist ticked as shown and the
// documents captured in the call (thumbnails that open the full image), beside the
// recordings. Every image fetch is logged (GET /api/sessions/{id}/document-access).

import { api, formatDateTime } from "./api.js";
import { $, el } from "./dom.js";

/** Item names of the session's queue list, by id; an item of another list shows its id. */
async function itemNames(queue) {
  try {
    const { items } = await api(`/api/materials?queue=${encodeURIComponent(queue)}`);
    return new Map(items.map((item) => [item.id, item]));
  } catch {
    return new Map();
  }
}

export async function mountCaptured({ queue, documents = [], materials = [] }, i18n) {
  const t = (key, params) => i18n.t(key, params);
  const names = await itemNames(queue);
  $("session-materials").replaceChildren(...(materials.length ? materials.map((tick) => {
    const item = names.get(tick.item);
    return el("li", { className: "material-row", dataset: { item: tick.item, shown: String(tick.shown) } },
      el("span", { className: `need ${tick.shown ? "optional" : "required"}`, textContent: t(tick.shown ? "manage.session.shown" : "manage.session.notShown") }),
      item ? el("span", { className: "name", textContent: i18n.lang === "en" ? item.name_en : item.name_zh })
        : el("span", { className: "name", translate: false, textContent: tick.item }),
      el("span", { className: "muted", translate: false, textContent: tick.by_name }),
      el("span", { className: "muted", textContent: formatDateTime(tick.at) }));
  }) : [el("li", { className: "muted", textContent: t("manage.session.noMaterials") })]));
  $("session-documents").replaceChildren(...(documents.length ? documents.map((doc, index) => {
    const label = t("manage.session.document", { n: index + 1, time: formatDateTime(doc.created_at) });
    if (!doc.url) return el("li", { className: "muted", textContent: `${label} · ${t("manage.session.documentDeleted")}` });
    return el("li", { dataset: { document: doc.id } },
      el("a", { href: doc.url, target: "_blank", rel: "noopener", title: t("manage.session.openFull") },
        el("img", { src: doc.url, alt: label, loading: "lazy" }),
        el("span", { className: "dims", textContent: `${label} · ${doc.width} × ${doc.height}` })));
  }) : [el("li", { className: "muted", textContent: t("manage.session.noDocuments") })]));
}
