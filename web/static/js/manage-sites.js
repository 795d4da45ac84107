// Sites and terminals: online/offline and last seen, create a terminal (its
// device token is shown once, here), revoke one, create a site.

import { api, formatDateTime, logout } from "./api.js";
import { $, el } from "./dom.js";
import { pageI18n } from "./i18n.js";

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);


function status(text) {
  $("sites-status").textContent = text;
}

function terminalRow(t) {
  const state = t.revoked ? "revoked" : t.online ? "online" : "offline";
  const revoke = el("button", { type: "button", className: "btn danger small", textContent: i18n.t("manage.sites.revoke"),
    "aria-label": i18n.t("manage.sites.revokeLabel", { name: t.name }) });
  revoke.disabled = t.revoked;
  revoke.addEventListener("click", () => revokeTerminal(t));
  return el("tr", { dataset: { terminal: t.id } },
    el("th", { scope: "row", translate: false, textContent: t.name }),
    el("td", { className: "mono", translate: false, textContent: t.id }),
    el("td", { translate: false, textContent: t.site_name ?? t.site_id }),
    el("td", {}, el("span", { className: `badge ${state}`, textContent: i18n.code("terminal_state", state) })),
    el("td", { textContent: formatDateTime(t.last_seen_at) }),
    el("td", {}, revoke),
  );
}

async function refresh() {
  const [{ sites }, { terminals }] = await Promise.all([api("/api/sites"), api("/api/terminals")]);
  $("terminal-rows").replaceChildren(...terminals.map(terminalRow));
  if (terminals.length === 0) {
    $("terminal-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 6, textContent: t("manage.sites.noTerminals") })));
  }
  $("site-list").replaceChildren(...sites.map((s) => el("li", {},
    el("strong", { translate: false, textContent: s.name }), " (",
    el("span", { className: "mono", translate: false, textContent: s.id }), `, ${i18n.code("site_kind", s.kind)})`)));
  const select = $("t-site");
  const chosen = select.value;
  select.replaceChildren(...sites.map((s) => el("option", { value: s.id, translate: false, textContent: s.name })));
  if (chosen) select.value = chosen;
}

async function revokeTerminal(terminal) {
  if (!window.confirm(t("manage.sites.revokeConfirm", { name: terminal.name }))) return;
  try {
    await api(`/api/terminals/${encodeURIComponent(terminal.id)}/revoke`, { method: "POST" });
    status(t("manage.sites.revoked", { name: terminal.name }));
    await refresh();
  } catch (err) {
    status(t("manage.sites.revokeFailed", { error: i18n.error(err) }));
  }
}

async function createTerminal(event) {
  event.preventDefault();
  const form = event.currentTarget;
  if (!form.reportValidity()) return;
  const body = { id: form.elements.id.value.trim(), site: form.elements.site.value, name: form.elements.name.value.trim() };
  try {
    const result = await api("/api/terminals", { method: "POST", body });
    $("token-terminal").textContent = body.name;
    $("token-value").value = result.token;
    $("token-box").hidden = false;
    $("token-value").focus();
    $("token-value").select();
    form.reset();
    status(t("manage.sites.terminalCreated", { name: body.name }));
    await refresh();
  } catch (err) {
    status(t("manage.sites.terminalFailed", { error: i18n.error(err) }));
  }
}

async function createSite(event) {
  event.preventDefault();
  const form = event.currentTarget;
  if (!form.reportValidity()) return;
  const body = { id: form.elements.id.value.trim(), name: form.elements.name.value.trim(), kind: form.elements.kind.value };
  try {
    await api("/api/sites", { method: "POST", body });
    form.reset();
    status(t("manage.sites.siteCreated", { name: body.name }));
    await refresh();
  } catch (err) {
    status(t("manage.sites.siteFailed", { error: i18n.error(err) }));
  }
}

$("terminal-form").addEventListener("submit", createTerminal);
$("site-form").addEventListener("submit", createSite);
$("token-copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("token-value").value);
    status(t("manage.sites.copied"));
  } catch {
    $("token-value").select();
    status(t("manage.sites.copyByHand"));
  }
});
$("logout").addEventListener("click", logout);
refresh().catch((err) => status(t("common.loadFailed", { error: i18n.error(err) })));
