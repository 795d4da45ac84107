// The checklist a visitor reads while waiting: the materials their matter needs, one
// numbered step each in big type (GET /api/materials with the kiosk's device token), in
// the kiosk's language (Chinese unless the visitor switched), with an example picture
// when the list has one.

import { $, el } from "./dom.js";

export class MaterialsChecklist {
  #root;
  #i18n;
  #token;
  #queue = null;
  #items = [];

  /** root: the <section> of the list; i18n: the page's; token: () => the device token. */
  constructor({ root, i18n, token }) {
    this.#root = root;
    this.#i18n = i18n;
    this.#token = token;
    i18n.on("change", () => this.#render());
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
      if (this.#queue !== queue) return;
      this.#items = items;
      this.#render();
    } catch {
      this.clear();
    }
  }

  clear() {
    this.#queue = null;
    this.#items = [];
    this.#render();
  }

  #render() {
    const t = (key, params) => this.#i18n.t(key, params);
    const en = this.#i18n.lang === "en";
    $("materials-list").replaceChildren(...this.#items.map((item, index) => {
      const name = en ? item.name_en : item.name_zh;
      const note = en ? item.note_en : item.note_zh;
      return el("li", { className: "material", dataset: { item: item.id } },
        el("span", { className: "step", "aria-hidden": "true", textContent: String(index + 1) }),
        el("div", { className: "material-text" },
          el("p", { className: "name", textContent: name }),
          note ? el("p", { className: "note", textContent: note }) : null),
        el("span", { className: `need ${item.required ? "required" : "optional"}`,
          textContent: t(item.required ? "materials.required" : "materials.optional") }),
        item.example ? el("img", { className: "example", src: item.example, alt: t("materials.example", { name }) }) : null);
    }));
    this.#root.hidden = this.#items.length === 0;
  }
}
