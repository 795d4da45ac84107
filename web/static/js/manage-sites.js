// Sites and terminals: online/offline and last seen, create a terminal (its
// device token is shown once, here), revoke one, create a site.

import { api, formatDateTime, logout } from "./api.js";
import { $, el } from "./dom.js";


function status(text) {
  $("sites-status").textContent = text;
}

function terminalRow(t) {
  const state = t.revoked ? "revoked" : t.online ? "online" : "offline";
  const revoke = el("button", { type: "button", className: "btn danger small", textContent: "Revoke",
    "aria-label": `Revoke terminal ${t.name}` });
  revoke.disabled = t.revoked;
  revoke.addEventListener("click", () => revokeTerminal(t));
  return el("tr", { dataset: { terminal: t.id } },
    el("th", { scope: "row", textContent: t.name }),
    el("td", { className: "mono", textContent: t.id }),
    el("td", { textContent: t.site_name ?? t.site_id }),
    el("td", {}, el("span", { className: `badge ${state}`, textContent: state })),
    el("td", { textContent: formatDateTime(t.last_seen_at) }),
    el("td", {}, revoke),
  );
}

async function refresh() {
  const [{ sites }, { terminals }] = await Promise.all([api("/api/sites"), api("/api/terminals")]);
  $("terminal-rows").replaceChildren(...terminals.map(terminalRow));
  if (terminals.length === 0) {
    $("terminal-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 6, textContent: "No terminals yet." })));
  }
  $("site-list").replaceChildren(...sites.map((s) => el("li", {},
    el("strong", { textContent: s.name }), ` (${s.id}, ${s.kind.replaceAll("_", " ")})`)));
  const select = $("t-site");
  const chosen = select.value;
  select.replaceChildren(...sites.map((s) => el("option", { value: s.id, textContent: s.name })));
  if (chosen) select.value = chosen;
}

async function revokeTerminal(terminal) {
  if (!window.confirm(`Revoke terminal “${terminal.name}”? Its token stops working at once.`)) return;
  try {
    await api(`/api/terminals/${encodeURIComponent(terminal.id)}/revoke`, { method: "POST" });
    status(`Terminal ${terminal.name} revoked.`);
    await refresh();
  } catch (err) {
    status(`Could not revoke: ${err.message}`);
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
    status(`Terminal ${body.name} created.`);
    await refresh();
  } catch (err) {
    status(`Could not create the terminal: ${err.message}`);
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
    status(`Site ${body.name} created.`);
    await refresh();
  } catch (err) {
    status(`Could not create the site: ${err.message}`);
  }
}

$("terminal-form").addEventListener("submit", createTerminal);
$("site-form").addEventListener("submit", createSite);
$("token-copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("token-value").value);
    status("Token copied.");
  } catch {
    $("token-value").select();
    status("Select the token and copy it by hand.");
  }
});
$("logout").addEventListener("click", logout);
refresh().catch((err) => status(`Could not load: ${err.message}`));
