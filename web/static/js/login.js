// The sign-in form: POST /api/login with fetch; the server sets the cookies.

import { api, ApiError } from "./api.js";
import { $ } from "./dom.js";
import { pageI18n } from "./i18n.js";

const i18n = pageI18n();

/** Where the page asked to go after sign-in; the server answers with a same-origin path
 * (parsed as a URL there) or the role's home, so nothing here decides. */
function askedNext() {
  return new URLSearchParams(window.location.search).get("next") ?? undefined;
}

async function signIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("login-error");
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username || !password) {
    error.textContent = i18n.t("login.missing");
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  error.textContent = "";
  try {
    const body = { username, password, next: askedNext() };
    const result = await api("/api/login", { method: "POST", body, redirectOn401: false });
    window.location.assign(result.next);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) error.textContent = i18n.t("login.wrong");
    else if (err instanceof ApiError && err.status === 429) error.textContent = i18n.t("login.throttled");
    else error.textContent = i18n.t("login.failed", { error: i18n.error(err) });
  } finally {
    button.disabled = false;
  }
}

$("login-form").addEventListener("submit", signIn);
