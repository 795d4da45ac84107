// The sign-in form: POST /api/login with fetch; the server sets the cookies.

import { api, ApiError } from "./api.js";
import { $ } from "./dom.js";

const HOME_BY_ROLE = { specialist: "/console", manager: "/manage" };

/** Only same-site paths are followed after sign-in (no open redirect). */
function safeNext() {
  const next = new URLSearchParams(window.location.search).get("next");
  return next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : null;
}

async function signIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("login-error");
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username || !password) {
    error.textContent = "Enter your username and password.";
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  error.textContent = "";
  try {
    const result = await api("/api/login", { method: "POST", body: { username, password }, redirectOn401: false });
    if (result.must_change_password) window.location.assign("/password");  // nothing else opens before
    else window.location.assign(safeNext() ?? HOME_BY_ROLE[result.role] ?? "/");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) error.textContent = "Wrong username or password.";
    else if (err instanceof ApiError && err.status === 429) error.textContent = "Too many attempts. Wait a minute and try again.";
    else error.textContent = `Sign-in failed: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

$("login-form").addEventListener("submit", signIn);
