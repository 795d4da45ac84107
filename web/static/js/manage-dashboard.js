// The live queue dashboard: server-sent events from /api/queues/stream (pushed
// on every change), rendered into the KPI strip, the queue table and an SVG
// chart of today's waits per hour. No polling, no chart library. The staffing estimate
// (GET /api/reports/staffing) is fetched on load and again when the day's figures
// change, at most once a minute.

import { api, formatSeconds, logout } from "./api.js";
import { $, el, svg } from "./dom.js";
import { pageI18n } from "./i18n.js";

const CHART = { width: 960, height: 240, top: 24, bottom: 28, left: 80, right: 8 };
/** Service level below this share of calls answered within target is flagged. */
const SERVICE_LEVEL_GOAL = 80;
/** The staffing estimate is fetched again at most this often (ms). */
const STAFFING_REFRESH_MS = 60_000;

const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);

function sum(queues, pick) {
  return queues.reduce((total, q) => total + (pick(q) ?? 0), 0);
}

function renderTotals(queues) {
  $("kpi-waiting").textContent = String(sum(queues, (q) => q.waiting));
  const longest = Math.max(0, ...queues.map((q) => q.longest_wait_s ?? 0));
  $("kpi-longest").textContent = formatSeconds(longest);
  $("kpi-answered").textContent = String(sum(queues, (q) => q.answered));
  $("kpi-abandoned").textContent = String(sum(queues, (q) => q.abandoned));
  // A specialist serving several queues is counted once per queue; show the busiest queue's view.
  const agents = (key) => Math.max(0, ...queues.map((q) => q.agents?.[key] ?? 0));
  $("kpi-agents").textContent = `${agents("available")} / ${agents("busy")} / ${agents("away")}`;
}

function serviceLevelCell(queue) {
  const level = queue.service_level;
  const target = t("manage.dash.target", { time: formatSeconds(queue.target_answer_s) });
  if (level === null || level === undefined) {
    return el("td", { className: "num muted", textContent: `— (${target})` });
  }
  const below = level < SERVICE_LEVEL_GOAL;
  return el("td", { className: below ? "num sl below" : "num sl", textContent: `${Math.round(level)} % (${target})` });
}

function renderQueues(queues) {
  const rows = queues.map((q) => el("tr", { dataset: { queue: q.id } },
    el("th", { scope: "row", textContent: i18n.name("queue", q.id) }),
    el("td", { className: "num waiting", textContent: String(q.waiting) }),
    el("td", { className: "num", textContent: q.waiting ? formatSeconds(q.longest_wait_s) : "—" }),
    el("td", { className: "num", textContent: formatSeconds(q.estimated_wait_s) }),
    el("td", { className: "num", textContent: String(q.agents?.available ?? 0) }),
    el("td", { className: "num", textContent: String(q.agents?.busy ?? 0) }),
    el("td", { className: "num", textContent: String(q.agents?.away ?? 0) }),
    el("td", { className: "num", textContent: String(q.offered ?? 0) }),
    el("td", { className: "num answered", textContent: String(q.answered ?? 0) }),
    el("td", { className: "num abandoned", textContent: String(q.abandoned ?? 0) }),
    el("td", { className: "num", textContent: formatSeconds(q.avg_wait_s) }),
    serviceLevelCell(q),
  ));
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colSpan: 12, textContent: t("manage.dash.noQueues") })));
  $("queue-rows").replaceChildren(...rows);
}

function renderChart(hourly, target) {
  const chart = $("hourly-chart");
  const byHour = new Map((hourly ?? []).map((h) => [Number(h.hour), h]));
  const plotW = CHART.width - CHART.left - CHART.right;
  const plotH = CHART.height - CHART.top - CHART.bottom;
  const longest = Math.max(0, ...[...byHour.values()].map((h) => h.avg_wait_s ?? 0));
  // Scale to the data, not the target: a 15-minute target would flatten a day of short waits.
  const maxWait = Math.max(60, longest * 1.2);
  const y = (seconds) => CHART.top + plotH - (seconds / maxWait) * plotH;
  const slot = plotW / 24;
  const nodes = [
    svg("line", { x1: CHART.left, x2: CHART.width - CHART.right, y1: y(0), y2: y(0), class: "axis" }),
    svg("text", { x: CHART.left - 6, y: y(maxWait) + 4, class: "tick end" }, formatSeconds(maxWait)),
    svg("text", { x: CHART.left - 6, y: y(0), class: "tick end" }, "0"),
  ];
  for (let hour = 0; hour < 24; hour += 1) {
    const x = CHART.left + hour * slot;
    const entry = byHour.get(hour);
    if (entry && entry.calls > 0) {
      const top = y(entry.avg_wait_s ?? 0);
      const bar = svg("rect", { x: x + slot * 0.15, y: top, width: slot * 0.7, height: Math.max(1, y(0) - top), class: "bar" });
      bar.append(svg("title", {}, t("manage.dash.barTitle", { hour, calls: entry.calls, wait: formatSeconds(entry.avg_wait_s) })));
      nodes.push(bar, svg("text", { x: x + slot / 2, y: top - 4, class: "tick mid" }, String(entry.calls)));
    }
    if (hour % 2 === 0) nodes.push(svg("text", { x: x + slot / 2, y: CHART.height - 8, class: "tick mid" }, `${hour}`));
  }
  if (target && target <= maxWait) {
    nodes.push(svg("line", { x1: CHART.left, x2: CHART.width - CHART.right, y1: y(target), y2: y(target), class: "target" }),
      svg("text", { x: CHART.width - CHART.right - 4, y: y(target) - 4, class: "tick end" }, t("manage.dash.target", { time: formatSeconds(target) })));
  }
  chart.replaceChildren(...nodes);
  const targetText = target
    ? t(target > maxWait ? "manage.dash.chartTargetAbove" : "manage.dash.chartTargetLine", { time: formatSeconds(target) }) : "";
  $("chart-desc").textContent = `${t("manage.dash.chartDesc")}${targetText}`;
}

function renderStaffing(queues) {
  const rows = [];
  for (const queue of queues) {
    for (const hour of queue.hours) {
      const short = hour.needed !== null && hour.on_duty < hour.needed;
      rows.push(el("tr", { dataset: { queue: queue.queue, hour: String(hour.hour) } },
        el("th", { scope: "row", textContent: i18n.name("queue", queue.queue) }),
        el("td", { className: "num", textContent: `${hour.hour}:00` }),
        el("td", { className: "num arrivals", textContent: String(hour.arrivals) }),
        el("td", { className: "num", textContent: hour.handle_s === null ? "—" : formatSeconds(hour.handle_s) }),
        el("td", { className: "num needed", textContent: hour.needed === null ? "—" : String(hour.needed) }),
        el("td", { className: short ? "num sl below on-duty" : "num on-duty", textContent: hour.on_duty.toFixed(1) }),
      ));
    }
  }
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colSpan: 6, className: "muted", textContent: t("manage.dash.staffing.none") })));
  $("staffing-rows").replaceChildren(...rows);
}

let staffingKey = "";
let staffingAt = -Infinity;
let staffingTimer = null;

async function loadStaffing() {
  staffingTimer = null;
  staffingAt = Date.now();
  try {
    renderStaffing((await api("/api/reports/staffing")).queues);
  } catch {
    $("staffing-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 6, className: "muted", textContent: t("manage.dash.staffing.failed") })));
  }
}

/** Fetch the estimate when the day's figures changed, at most once a minute (the last change wins). */
function refreshStaffing(queues) {
  const key = queues.map((q) => `${q.id}:${q.offered ?? 0}:${q.answered ?? 0}`).join(",");
  if (key === staffingKey) return;
  staffingKey = key;
  if (staffingTimer !== null) return;
  staffingTimer = setTimeout(loadStaffing, Math.max(0, staffingAt + STAFFING_REFRESH_MS - Date.now()));
}

function render(data) {
  const queues = data.queues ?? [];
  renderTotals(queues);
  renderQueues(queues);
  const targets = queues.map((q) => q.target_answer_s).filter((t) => typeof t === "number");
  renderChart(data.hourly, targets.length ? Math.min(...targets) : null);
  refreshStaffing(queues);
  $("live-state").textContent = t("manage.dash.live", { time: i18n.time(new Date().toISOString()) });
  $("live-state").dataset.state = "live";
  document.body.dataset.updates = String(Number(document.body.dataset.updates ?? 0) + 1);
}

function connect() {
  const source = new EventSource("/api/queues/stream");
  source.addEventListener("queues", (event) => render(JSON.parse(event.data)));
  source.addEventListener("error", () => {
    const closed = source.readyState === EventSource.CLOSED;
    $("live-state").dataset.state = closed ? "closed" : "reconnecting";
    $("live-state").textContent = t(closed ? "manage.dash.closed" : "common.reconnecting");
  });
}

$("logout").addEventListener("click", logout);
connect();
