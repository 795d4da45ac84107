// The public booking page (/book), phone first: pick a matter, a day, a slot; give the
// enterprise (USCC checked as on the kiosk); keep the code shown as text and QR code.
// /book?code=XXXX shows that booking and lets the visitor cancel it.

import { dayLabel, timeLabel } from "./days.js";
import { $, el } from "./dom.js";
import { pageI18n } from "./i18n.js";
import { usccError, usccProblem } from "./uscc.js";

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);
const setup = JSON.parse($("vwin-i18n").textContent).booking;
const params = new URLSearchParams(window.location.search);
const chosen = { queue: null, day: null, slot: null };

async function call(path, options = {}) {
  const response = await fetch(path, {
    method: options.method ?? "GET",
    headers: { Accept: "application/json", ...(options.body && { "Content-Type": "application/json" }) },
    body: options.body && JSON.stringify(options.body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw Object.assign(new Error(data?.message ?? response.status), { code: data?.error ?? "" });
  return data;
}

function pick(list, button) {
  for (const other of list.children) other.setAttribute("aria-checked", String(other === button));
}

function choiceButton(className, label, onPick, extra = {}) {
  const button = el("button", { type: "button", className, role: "radio", "aria-checked": "false", ...extra }, ...label);
  button.addEventListener("click", () => {
    pick(button.parentElement, button);
    onPick();
  });
  return button;
}

function showFrom(step) {
  const order = ["step-matter", "step-day", "step-slot", "step-enterprise", "step-done"];
  const at = order.indexOf(step);
  order.forEach((id, i) => { $(id).hidden = i > at; });
  $(step).scrollIntoView({ block: "start" });
}

function renderMatters() {
  const list = $("matter-list");
  if (setup.queues.length === 0) {
    list.replaceChildren(el("p", { className: "lead", textContent: t("book.noMatters") }));
    return;
  }
  list.replaceChildren(...setup.queues.map((queue) => choiceButton("choice", [i18n.name("queue", queue)], () => {
    chosen.queue = queue;
    renderDays();
    showFrom("step-day");
  }, { dataset: { queue } })));
  const wanted = params.get("queue");
  const preset = [...list.children].find((b) => b.dataset.queue === wanted);
  if (preset) preset.click();
}

function renderDays() {
  $("day-list").replaceChildren(...setup.days.map((day) => choiceButton("chip", [dayLabel(i18n, day)], () => {
    chosen.day = day;
    loadSlots();
  }, { dataset: { day } })));
}

async function loadSlots() {
  const list = $("slot-list");
  list.replaceChildren();
  $("slot-note").textContent = t("book.loading");
  showFrom("step-slot");
  try {
    const { slots } = await call(`/api/appointments/slots?queue=${encodeURIComponent(chosen.queue)}&date=${chosen.day}`);
    $("slot-note").textContent = slots.length ? "" : t("book.noSlots");
    list.replaceChildren(...slots.map((slot) => {
      const button = choiceButton("slot", [
        el("span", { className: "slot-time", textContent: `${timeLabel(i18n, slot.start)}–${timeLabel(i18n, slot.end)}` }),
        el("span", { className: "slot-free", textContent: slot.free ? t("book.free", { n: slot.free }) : t("book.full") }),
      ], () => {
        chosen.slot = slot;
        showFrom("step-enterprise");
        $("book-name").focus({ preventScroll: true });
      }, { dataset: { start: slot.start } });
      button.disabled = slot.free === 0;
      return button;
    }));
  } catch (err) {
    $("slot-note").textContent = i18n.error(err);
  }
}

function checkUscc() {
  const input = $("book-uscc");
  const code = input.value.toUpperCase().replace(/\s+/g, "");
  if (code !== input.value) input.value = code;
  const hint = $("book-uscc-hint");
  hint.classList.remove("ok", "error");
  const problem = code.length === 18 ? usccProblem(code) : null;
  if (problem) {
    hint.textContent = t("uscc.invalid", { detail: t(`uscc.rule.${problem.rule}`, problem) });
    hint.classList.add("error");
  } else {
    hint.textContent = code.length === 18 ? t("uscc.ok") : code ? t("uscc.remaining", { n: 18 - code.length }) : "";
    if (code.length === 18) hint.classList.add("ok");
  }
}

async function submit(event) {
  event.preventDefault();
  const name = $("book-name").value.trim();
  const uscc = $("book-uscc").value.trim();
  const phone = $("book-phone").value.trim();
  $("book-error").textContent = "";
  if (!name) return void ($("book-error").textContent = t("book.nameRequired"));
  if (usccError(uscc)) return void ($("book-error").textContent = t("uscc.blocked"));
  $("book-submit").disabled = true;
  try {
    const body = { queue: chosen.queue, start: chosen.slot.start, enterprise: { name, uscc } };
    if (phone) body.phone = phone;
    const made = await call("/api/appointments", { method: "POST", body });
    history.replaceState(null, "", `/book?code=${made.code}`);
    showBooking(made);
  } catch (err) {
    $("book-error").textContent = i18n.error(err);
    if (err.code === "slot_full") loadSlots();
  } finally {
    $("book-submit").disabled = false;
  }
}

function showBooking(booking) {
  for (const id of ["step-matter", "step-day", "step-slot", "step-enterprise"]) $(id).hidden = true;
  $("step-done").hidden = false;
  $("done-when").textContent = t("book.when", {
    matter: i18n.name("queue", booking.queue), day: dayLabel(i18n, booking.start),
    time: `${timeLabel(i18n, booking.start)}–${timeLabel(i18n, booking.end)}`,
  });
  $("done-code").textContent = booking.code;
  $("done-qr").src = `/api/appointments/${booking.code}/qr.svg`;
  $("done-state").textContent = t(`appointment.state.${booking.state}`);
  $("book-cancel").hidden = booking.state !== "booked";
}

async function cancel() {
  const code = $("done-code").textContent;
  try {
    showBooking(await call(`/api/appointments/${code}`, { method: "DELETE" }));
  } catch (err) {
    $("done-state").textContent = i18n.error(err);
  }
}

async function main() {
  i18n.apply();
  $("back-to-kiosk").hidden = params.get("from") !== "kiosk";
  $("book-uscc").addEventListener("input", checkUscc);
  $("step-enterprise").addEventListener("submit", submit);
  $("book-cancel").addEventListener("click", cancel);
  const code = params.get("code");
  if (code) {
    try {
      return showBooking(await call(`/api/appointments/${encodeURIComponent(code)}`));
    } catch (err) {
      $("matter-title").after(el("p", { className: "error", role: "alert", textContent: i18n.error(err) }));
    }
  }
  renderMatters();
}

main();
