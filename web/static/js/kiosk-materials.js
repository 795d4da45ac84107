// The checklist a visitor reads while waiting: the materials their matter needs, one
// numbered step each, Chinese first and English under it (GET /api/materials with the
// kiosk's device token), with an example picture when the list has one.

import { $, el } from "./dom.js";

export class MaterialsChecklist {
  #root;
  #t;
  #token;
  #queue = null;

  /** root: the <section> of the list; t: the page's translate; token: () => device token. */
  constructor({ root, t, token }) {
    this.#root = root;
    this.#t = t;
    this.#token = token;
  }

  /** Show the queue's list (fetched once per queue); a failure leaves the list hidden. */
  async show(queue) {
    if (queue === this.#queue && !this.#root.hidden) return;
    this.#queue = queue;
    try {
      const response = await fetch(`/api/materials?queue=${encodeURIComponent(queue)}`, {
        headers: { Accept: "application/json", Authorization: `Bearer ${this.#token()}` },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const { items } = await response.json();
      if (this.#queue === queue) this.#render(items);
    } catch {
      this.clear();
    }
  }

  clear() {
    this.#queue = null;
    this.#root.hidden = true;
    $("materials-list").replaceChildren();
  }

  #render(items) {
    $("materials-list").replaceChildren(...items.map((item, index) => el("li", { className: "material", dataset: { item: item.id } },
      el("span", { className: "step", "aria-hidden": "true", textContent: String(index + 1) }),
      el("div", { className: "material-text" },
        el("p", { className: "name-zh", lang: "zh-CN", textContent: item.name_zh }),
        el("p", { className: "name-en", lang: "en", textContent: item.name_en }),
        item.note_zh ? el("p", { className: "note-zh", lang: "zh-CN", textContent: item.note_zh }) : null,
        item.note_en ? el("p", { className: "note-en", lang: "en", textContent: item.note_en }) : null,
      ),
      el("span", { className: `need ${item.required ? "required" : "optional"}`,
        textContent: this.#t(item.required ? "materials.required" : "materials.optional") }),
      item.example ? el("img", { className: "example", src: item.example, alt: this.#t("materials.example", { name: item.name_zh }), loading: "lazy" }) : null,
    )));
    this.#root.hidden = items.length === 0;
  }
}
