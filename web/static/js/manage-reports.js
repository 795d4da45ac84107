// Managers' reports: a period and a dimension, the figures as a table, two SVG
// bar charts and the CSV link for the same query. No chart library.

import { api, formatSeconds, logout } from "./api.js";
import { $, el, svg } from "./dom.js";
import { pageI18n } from "./i18n.js";

const CHART = { width: 600, height: 240, top: 16, bottom: 40, left: 56, right: 8 };
const i18n = pageI18n();
const t = (key, params) => i18n.t(key, params);

function query() {
  const params = new URLSearchParams({ by: $("r-by").value });
  if ($("r-from").value) params.set("from", $("r-from").value);
  if ($("r-to").value) params.set("to", $("r-to").value);
  return params.toString();
}

/** Paired bars per row: series = [[pick, className, label], ...]. */
function barChart(target, rows, series, format) {
  const max = Math.max(1, ...rows.flatMap((r) => series.map(([pick]) => pick(r) ?? 0)));
  const plotH = CHART.height - CHART.top - CHART.bottom;
  const slot = (CHART.width - CHART.left - CHART.right) / Math.max(1, rows.length);
  const y = (v) => CHART.top + plotH - (v / max) * plotH;
  const nodes = [
    svg("line", { x1: CHART.left, x2: CHART.width - CHART.right, y1: y(0), y2: y(0), class: "axis" }),
    svg("text", { x: CHART.left - 4, y: y(max) + 4, class: "tick end" }, format(max)),
    svg("text", { x: CHART.left - 4, y: y(0), class: "tick end" }, "0"),
  ];
  rows.forEach((row, i) => {
    const x = CHART.left + i * slot;
    const width = (slot * 0.8) / series.length;
    series.forEach(([pick, className, label], j) => {
      const value = pick(row) ?? 0;
      const bar = svg("rect", { x: x + slot * 0.1 + j * width, y: y(value), width, height: Math.max(1, y(0) - y(value)), class: className });
      bar.append(svg("title", {}, `${row.label ?? row.key ?? "—"}: ${label} ${format(value)}`));
      nodes.push(bar);
    });
    // A long name is squeezed into its slot rather than cut: a cut name is no name.
    const name = String(row.label ?? row.key ?? "—");
    const labelWidth = [...name].reduce((sum, ch) => sum + (ch.charCodeAt(0) > 0x2e80 ? 13 : 7), 0);
    const fit = labelWidth > slot * 0.95 ? { textLength: slot * 0.95, lengthAdjust: "spacingAndGlyphs" } : {};
    nodes.push(svg("text", { x: x + slot / 2, y: CHART.height - CHART.bottom + 16, class: "tick mid", ...fit }, name));
  });
  target.replaceChildren(...nodes);
}

function cell(text, numeric = true) {
  return el("td", { className: numeric ? "num" : "", textContent: text });
}

/** The row's name: a configured name for a queue or department, else the server's label. */
function label(report, r) {
  if (r.key === null || r.key === undefined) return t("manage.reports.none");
  if (report.by === "queue" || report.by === "department") return i18n.name(report.by, r.key);
  return r.label ?? r.key;
}

function actionCounts(counts) {
  return Object.entries(counts).map(([type, n]) => `${i18n.name("action", type)}: ${n}`).join("; ") || "—";
}

function render(report) {
  for (const r of report.rows) r.label = label(report, r);
  const named = report.by === "queue" || report.by === "department";
  const rows = report.rows.map((r) => el("tr", { dataset: { key: r.key ?? "" } },
    el("th", { scope: "row", translate: named, textContent: r.label }),
    cell(String(r.sessions)), cell(String(r.answered)), cell(String(r.answered_within_target)),
    cell(String(r.abandoned)), cell(formatSeconds(r.avg_wait_s)), cell(formatSeconds(r.p90_wait_s)),
    cell(formatSeconds(r.avg_talk_s)),
    cell(r.avg_rating === null ? "—" : `${r.avg_rating.toFixed(2)} (${r.rated})`),
    cell(actionCounts(r.actions_completed), false),
    cell(String(r.matters_opened)), cell(`${r.matters_resolved} (${r.matters_resolved_on_time})`),
    cell(`${r.appointments_served ?? 0}/${r.appointments_booked ?? 0}/${r.appointments_no_show ?? 0}/${r.appointments_cancelled ?? 0}`),
    cell(`${formatSeconds(r.avg_wait_appointment_s)} / ${formatSeconds(r.avg_wait_walk_in_s)}`),
    cell(String(r.handoffs)),
  ));
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colSpan: 15, textContent: t("manage.reports.empty") })));
  $("report-rows").replaceChildren(...rows);
  const totals = Object.entries(report.actions_completed);
  $("actions-total").replaceChildren(...(totals.length
    ? totals.map(([type, n]) => el("li", {}, el("strong", { textContent: String(n) }), ` ${i18n.name("action", type)}`))
    : [el("li", { textContent: t("manage.reports.noActions") })]));
  const withSessions = report.rows.filter((r) => r.sessions > 0);
  barChart($("chart-sessions"), withSessions, [[(r) => r.sessions, "bar", t("manage.reports.col.sessions")], [(r) => r.answered_within_target, "bar alt", t("manage.reports.col.withinTarget")]], (v) => String(Math.round(v)));
  barChart($("chart-waits"), withSessions, [[(r) => r.avg_wait_s, "bar", t("manage.reports.col.avgWait")], [(r) => r.p90_wait_s, "bar alt", t("manage.reports.col.p90Wait")]], formatSeconds);
}

async function refresh(event) {
  event?.preventDefault();
  const q = query();
  $("r-csv").href = `/api/reports.csv?${q}`;
  $("report-status").textContent = t("common.loading");
  try {
    render(await api(`/api/reports?${q}`));
    $("report-status").textContent = "";
  } catch (err) {
    $("report-status").textContent = t("common.loadFailed", { error: i18n.error(err) });
  }
}

$("report-form").addEventListener("submit", refresh);
$("logout").addEventListener("click", logout);
refresh();
