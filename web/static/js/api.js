// fetch() for the staff pages: JSON in and out, the CSRF header on every unsafe
// request (double-submit of the vwin_csrf cookie), and a trip to /login on 401.

import { pageI18n } from "./i18n.js";

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

export function loginUrl() {
  const next = window.location.pathname + window.location.search;
  return `/login?next=${encodeURIComponent(next)}`;
}

/** Call the API; resolves to the decoded JSON body or throws ApiError. */
export async function api(path, { method = "GET", body, redirectOn401 = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (UNSAFE.has(method)) headers["X-CSRF-Token"] = cookie("vwin_csrf") ?? "";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 401 && redirectOn401) {
    window.location.assign(loginUrl());
    throw new ApiError(401, "unauthorized", "signed out");
  }
  const type = response.headers.get("Content-Type") ?? "";
  const data = type.includes("application/json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data?.error, data?.message);
  return data;
}

export async function logout() {
  try {
    await api("/api/logout", { method: "POST", redirectOn401: false });
  } finally {
    window.location.assign("/login");
  }
}

/** In the configured time zone and the page's language (i18n.js). */
export function formatDateTime(iso) {
  return pageI18n().dateTime(iso);
}

export function formatSeconds(seconds) {
  return pageI18n().seconds(seconds);
}
