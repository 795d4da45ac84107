// Change one's own password (POST /api/password); a one-time password leads here first.
// Every login then ends (the server clears the cookies): sign in again with the new one.

import { api } from "./api.js";
import { $ } from "./dom.js";
import { pageI18n } from "./i18n.js";

const i18n = pageI18n();

async function save(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("password-error");
  const current = form.elements.current.value;
  const fresh = form.elements.new.value;
  if (fresh !== form.elements.repeat.value) {
    error.textContent = i18n.t("password.differ");
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  error.textContent = "";
  try {
    await api("/api/password", { method: "POST", body: { current, new: fresh } });
    const home = $("main").dataset.role === "manager" ? "/manage" : "/console";
    window.location.assign(`/login?next=${encodeURIComponent(home)}`);
  } catch (err) {
    error.textContent = i18n.t("password.failed", { error: i18n.error(err) });
  } finally {
    button.disabled = false;
  }
}

$("password-form").addEventListener("submit", save);
