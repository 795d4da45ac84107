// The pages' words: the server's message catalogs (web/i18n/<lang>.json), handed to the
// page in <script type="application/json" id="vwin-i18n"> with the configured names
// (queues, departments, action types and steps) and the time zone. See docs/i18n.md.
//
// Markup may carry keys, not text: data-i18n (text content), data-i18n-placeholder,
// data-i18n-aria-label, data-i18n-title and data-i18n-alt. apply() fills them for the current
// language and sets <html lang>, so screen readers switch voice too (the kiosk switches
// in place; staff pages reload in the other language, see setUpLanguageSwitch).

import { $ } from "./dom.js";
import { Emitter } from "./emitter.js";

const LANG_COOKIE = "vwin_lang";
const LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600;

export class I18n extends Emitter {
  #dictionaries;
  #lang;
  #names;
  #timezone;

  /** dictionaries: {"zh-CN": {...}, en: {...}}; the first language is the fallback. */
  constructor(dictionaries, lang, { names = {}, timezone = undefined } = {}) {
    super();
    this.#dictionaries = dictionaries;
    this.#lang = lang in dictionaries ? lang : Object.keys(dictionaries)[0];
    this.#names = names;
    this.#timezone = timezone;
  }

  get lang() {
    return this.#lang;
  }

  /** The configured time zone (times are shown in it, not the browser's). */
  get timezone() {
    return this.#timezone;
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

  has(key) {
    return key in this.#dictionaries[this.#lang];
  }

  /** Translate `key`; a missing key shows the key itself so it is noticed, never a blank. */
  t(key, params = {}) {
    const fallback = this.#dictionaries[this.languages[0]];
    const template = this.#dictionaries[this.#lang][key] ?? fallback[key] ?? key;
    return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  }

  /** A code's words (`prefix.code`), e.g. code("end_reason", "hangup"); unknown codes say so. */
  code(prefix, value) {
    if (value === null || value === undefined || value === "") return "—";
    const key = `${prefix}.${value}`;
    return this.has(key) ? this.t(key) : this.t("common.unknownCode", { code: value });
  }

  /** A configured name: kind is queue, department, action or step ("action.step"). */
  name(kind, id) {
    if (id === null || id === undefined || id === "") return "—";
    const pair = this.#names[kind]?.[id];
    return pair ? pair[this.#lang === "en" ? 1 : 0] : id;
  }

  /** Words for a server `error` (WebSocket frame or ApiError) by its code, never its message. */
  error(err) {
    const code = err?.code ?? "";
    return this.has(`error.${code}`) ? this.t(`error.${code}`) : this.t("error.unknown", { code: code || "?" });
  }

  #format(iso, options) {
    if (!iso) return "—";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "—";
    return new Intl.DateTimeFormat(this.#lang, { timeZone: this.#timezone, ...options }).format(date);
  }

  /** A moment in the configured time zone (not the browser's), as this language writes it. */
  dateTime(iso) {
    return this.#format(iso, { dateStyle: "medium", timeStyle: "medium" });
  }

  time(iso) {
    return this.#format(iso, { timeStyle: "medium" });
  }

  /** "45 秒" / "3 分 05 秒" style durations. */
  seconds(value) {
    if (value === null || value === undefined || !Number.isFinite(value)) return "—";
    const s = Math.round(value);
    if (s < 60) return this.t("duration.seconds", { n: s });
    return this.t("duration.minutes", { m: Math.floor(s / 60), s: String(s % 60).padStart(2, "0") });
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
    for (const el of root.querySelectorAll("[data-i18n-alt]")) el.alt = this.t(el.dataset.i18nAlt);
  }
}

let pageInstance = null;

/** The page's I18n, from the data block the server rendered (one per page). */
export function pageI18n() {
  if (pageInstance) return pageInstance;
  const block = $("vwin-i18n");
  const data = block ? JSON.parse(block.textContent) : { lang: "zh-CN", catalogs: { "zh-CN": {} } };
  pageInstance = new I18n(data.catalogs, data.lang, { names: data.names, timezone: data.timezone });
  return pageInstance;
}

/** Staff pages: the switch remembers the other language (cookie, kept across logins) and
 * reloads, so the server renders the page in it. */
export function setUpLanguageSwitch() {
  const button = $("lang-switch");
  if (!button) return;
  button.addEventListener("click", () => {
    // Not in the middle of a call: the reload would cut the caller off.
    if (["offer", "call"].includes(document.body.dataset.panel)) return;
    document.cookie = `${LANG_COOKIE}=${button.dataset.lang}; path=/; max-age=${LANG_COOKIE_MAX_AGE_S}; samesite=lax`;
    const url = new URL(window.location.href);
    url.searchParams.delete("lang");
    window.location.replace(url);
  });
}

/** "3 min" / "45 s" style durations, in the dictionary's words. */
export function formatWait(i18n, seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return i18n.t("wait.unknown");
  if (seconds < 60) return i18n.t("wait.seconds", { n: Math.max(0, Math.round(seconds)) });
  return i18n.t("wait.minutes", { n: Math.round(seconds / 60) });
}
