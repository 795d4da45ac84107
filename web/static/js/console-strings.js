// Console wording added with the invite/transfer, waiting-calls, enlarge and
// secure-context features, Simplified Chinese first (the fallback), then English.
// The page's <html lang> picks the language.

import { I18n } from "./i18n.js";
import { MEDIA_MESSAGES } from "./media-errors.js";

const zh = {
  "insecure.console": "本页面未通过安全连接（HTTPS）打开：摄像头和麦克风无法使用，来电无法接通视频。请使用 HTTPS 地址打开控制台。",
};

const en = {
  "insecure.console": "This page was not opened over a secure connection (HTTPS): the camera and microphone cannot be used and calls will have no video. Open the console at its HTTPS address.",
};

export const CONSOLE_STRINGS = {
  "zh-CN": { ...zh, ...MEDIA_MESSAGES["zh-CN"] },
  en: { ...en, ...MEDIA_MESSAGES.en },
};

/** The console's dictionary in the page's language (Chinese unless the page says English). */
export function consoleI18n() {
  return new I18n(CONSOLE_STRINGS, document.documentElement.lang === "en" ? "en" : "zh-CN");
}
