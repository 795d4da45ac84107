// Change one's own password (POST /api/password); a one-time password leads here first.

import { api, ApiError } from "./api.js";

const HOME_BY_ROLE = { specialist: "/console", manager: "/manage" };

// Chinese first, English second, by the server's error code.
const REFUSALS = {
  password_too_short: "密码至少需要 10 个字符。 At least 10 characters.",
  password_too_long: "密码太长。 The password is too long.",
  password_contains_username: "密码不能包含用户名。 The password may not contain the username.",
  password_common: "这是常见密码，请换一个。 This is a common password; choose another.",
  wrong_password: "当前密码不正确。 The current password is wrong.",
  same_password: "新密码不能与当前密码相同。 The new password must differ.",
};

async function save(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = document.getElementById("password-error");
  const current = form.elements.current.value;
  const fresh = form.elements.new.value;
  if (fresh !== form.elements.repeat.value) {
    error.textContent = "两次输入的新密码不一致。 The new passwords differ.";
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  error.textContent = "";
  try {
    await api("/api/password", { method: "POST", body: { current_password: current, new_password: fresh } });
    const role = document.getElementById("main").dataset.role;
    window.location.assign(HOME_BY_ROLE[role] ?? "/");
  } catch (err) {
    const known = err instanceof ApiError ? REFUSALS[err.code] : null;
    error.textContent = known ?? `保存失败 Could not save: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

document.getElementById("password-form").addEventListener("submit", save);
