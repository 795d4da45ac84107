// Materials and captured documents in the console: the caller's checklist (the same
// list the kiosk showed while they waited) with a tick for each item shown, stored with
// the session (POST /api/sessions/{id}/materials); "capture" asks the kiosk for a still
// (`document.request`) or takes one of the received video; every `document.added`
// appears at once as a thumbnail that opens full size and zooms.

import { api, cookie } from "./api.js";
import { stillOf, uploadStill } from "./capture.js";
import { $, el } from "./dom.js";
import { pageI18n } from "./i18n.js";
import { MSG } from "./signaling.js";

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);
const ZOOMS = [1, 1.5, 2, 3, 4];

export class DocumentsPanel {
  #signaling;
  #queues = new Map();
  #call = null;
  #zoom = 0;

  constructor({ signaling }) {
    this.#signaling = signaling;
    // An invitation is offered under its own id; `joins` names the call it joins.
    signaling.on(MSG.CALL_OFFERED, (m) => this.#queues.set(m.joins ?? m.call_id, m.queue));
    signaling.on(MSG.CALL_CONNECTED, (m) => this.#open(m));
    signaling.on(MSG.CALL_ENDED, (m) => {
      if (m.call_id === this.#call?.call_id) this.#call = null;
    });
    signaling.on(MSG.DOCUMENT_ADDED, (m) => this.#added(m));
    // A joint action started in the call adds its own items (e.g. the application form).
    signaling.on(MSG.ACTION_UPDATED, (m) => {
      if (m.call_id !== this.#call?.call_id || this.#call.actions.has(m.action)) return;
      this.#call.actions.add(m.action);
      this.#loadMaterials({ action: m.action }).catch((err) => this.#status(i18n.error(err)));
    });
    signaling.on(MSG.ERROR, (m) => {
      if (m.refused === MSG.DOCUMENT_REQUEST) this.#status(i18n.error(m));
    });
    $("request-document").addEventListener("click", () => this.#request());
    $("capture-remote").addEventListener("click", () => this.#captureRemote());
    $("document-zoom-in").addEventListener("click", () => this.#zoomBy(1));
    $("document-zoom-out").addEventListener("click", () => this.#zoomBy(-1));
    $("document-full").addEventListener("click", () => this.#zoomBy(this.#zoom === ZOOMS.length - 1 ? -this.#zoom : 1));
    $("document-close").addEventListener("click", () => $("document-viewer").close());
  }

  #status(text) {
    $("documents-status").textContent = text;
  }

  #open(message) {
    if (this.#call?.call_id === message.call_id) return;
    this.#call = { call_id: message.call_id, session_id: message.session_id, actions: new Set() };
    $("document-gallery").replaceChildren();
    $("materials-checklist").replaceChildren();
    this.#status("");
    const queue = this.#queues.get(message.call_id);
    if (queue) this.#loadMaterials({ queue }).catch((err) => this.#status(i18n.error(err)));
  }

  /** Add the items of a queue's or an action's list that the checklist does not show yet. */
  async #loadMaterials(which) {
    const sessionId = this.#call.session_id;
    const { items } = await api(`/api/materials?${new URLSearchParams(which)}`);
    if (this.#call?.session_id !== sessionId) return;
    const en = i18n.lang === "en";
    const shown = new Set([...$("materials-checklist").children].map((li) => li.dataset.item));
    $("materials-checklist").append(...items.filter((item) => !shown.has(item.id)).map((item) => {
      const box = el("input", { type: "checkbox", id: `material-${item.id}`, value: item.id });
      box.addEventListener("change", () => this.#tick(sessionId, item.id, box));
      return el("li", { className: "material-tick", dataset: { item: item.id } },
        box,
        el("label", { for: `material-${item.id}` },
          el("span", { className: "name", textContent: en ? item.name_en : item.name_zh }),
          el("span", { className: `need ${item.required ? "required" : "optional"}`,
            textContent: t(item.required ? "materials.required" : "materials.optional") })));
    }));
  }

  async #tick(sessionId, item, box) {
    box.disabled = true;
    try {
      await api(`/api/sessions/${encodeURIComponent(sessionId)}/materials`, { method: "POST", body: { item, shown: box.checked } });
      box.closest("li").dataset.saved = String(box.checked);
    } catch (err) {
      box.checked = !box.checked;
      this.#status(t("console.materials.failed", { error: i18n.error(err) }));
    } finally {
      box.disabled = false;
    }
  }

  #request() {
    if (!this.#call) return;
    if (this.#signaling.send(MSG.DOCUMENT_REQUEST, { call_id: this.#call.call_id })) this.#status(t("console.documents.requested"));
  }

  async #captureRemote() {
    if (!this.#call) return;
    const video = $("remote-video");
    try {
      const blob = await stillOf(video.srcObject?.getVideoTracks?.()[0], video);
      await uploadStill(this.#call.session_id, blob, { "X-CSRF-Token": cookie("vwin_csrf") ?? "" });
    } catch (err) {
      this.#status(t("console.documents.failed", { error: i18n.error(err) }));
    }
  }

  #added({ call_id: callId, document }) {
    if (callId !== this.#call?.call_id) return;
    const url = `/api/documents/${encodeURIComponent(document.id)}`;
    const label = t("console.documents.open", { n: $("document-gallery").children.length + 1 });
    const button = el("button", { type: "button", className: "thumb", "aria-label": label },
      el("img", { src: url, alt: label, loading: "lazy" }),
      el("span", { className: "dims", textContent: `${document.width} × ${document.height}` }));
    button.addEventListener("click", () => this.#show(url, label));
    $("document-gallery").append(el("li", { dataset: { document: document.id } }, button));
    this.#status(t("console.documents.added"));
  }

  #show(url, label) {
    this.#zoom = 0;
    $("document-full").src = url;
    $("document-full").alt = label;
    this.#zoomBy(0);
    $("document-viewer").showModal();
  }

  #zoomBy(step) {
    this.#zoom = Math.min(ZOOMS.length - 1, Math.max(0, this.#zoom + step));
    $("document-full").style.width = `${ZOOMS[this.#zoom] * 100}%`;
    $("document-viewer").dataset.zoom = String(ZOOMS[this.#zoom]);
  }
}
