// A small i18n helper: dictionaries of plain strings with {name} placeholders.
//
// Markup carries keys, not text: data-i18n (text content), data-i18n-placeholder,
// data-i18n-aria-label and data-i18n-title. apply() fills them for the current
// language and sets <html lang>, so screen readers switch voice too.

import { Emitter } from "./emitter.js";

export class I18n extends Emitter {
  #dictionaries;
  #lang;

  /** dictionaries: {"zh-CN": {...}, en: {...}}; the first language is the fallback. */
  constructor(dictionaries, lang) {
    super();
    this.#dictionaries = dictionaries;
    this.#lang = lang in dictionaries ? lang : Object.keys(dictionaries)[0];
  }

  get lang() {
    return this.#lang;
  }

  get languages() {
    return Object.keys(this.#dictionaries);
  }

  setLang(lang) {
    if (!(lang in this.#dictionaries) || lang === this.#lang) return;
    this.#lang = lang;
    this.apply();
    this.emit("change", lang);
  }

  /** Translate `key`; a missing key shows the key itself so it is noticed, never a blank. */
  t(key, params = {}) {
    const fallback = this.#dictionaries[this.languages[0]];
    const template = this.#dictionaries[this.#lang][key] ?? fallback[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  }

  apply(root = document) {
    document.documentElement.lang = this.#lang;
    for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = this.t(el.dataset.i18n);
    for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
      el.placeholder = this.t(el.dataset.i18nPlaceholder);
    }
    for (const el of root.querySelectorAll("[data-i18n-aria-label]")) {
      el.setAttribute("aria-label", this.t(el.dataset.i18nAriaLabel));
    }
    for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = this.t(el.dataset.i18nTitle);
  }
}

/** "3 min" / "45 s" style durations, in the dictionary's words. */
export function formatWait(i18n, seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return i18n.t("wait.unknown");
  if (seconds < 60) return i18n.t("wait.seconds", { n: Math.max(0, Math.round(seconds)) });
  return i18n.t("wait.minutes", { n: Math.round(seconds / 60) });
}
