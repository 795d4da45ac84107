"""Managers' reports over HTTP: `GET /api/reports` (JSON) and `/api/reports.csv`."""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec
from aiohttp import web

from server import keys
from server.http.api import reply
from server.http.auth import fail, require
from server.http.timespan import period
from server.storage.reports import DIMENSIONS, Report

MANAGER = "manager"
CSV_COLUMNS = (
    "key", "label", "sessions", "answered", "answered_within_target", "abandoned",
    "avg_wait_s", "p90_wait_s", "avg_talk_s", "rated", "avg_rating",
    "matters_opened", "matters_resolved", "matters_resolved_on_time",
)


async def _report(request: web.Request) -> Report:
    manager = await require(request, MANAGER)
    q = request.query
    unknown = set(q) - {"from", "to", "by"}
    if unknown:
        fail(web.HTTPBadRequest, "invalid_query", f"unknown parameter(s): {sorted(unknown)}")
    by = q.get("by") or "queue"
    if by not in DIMENSIONS:
        fail(web.HTTPBadRequest, "invalid_query", f"by must be one of {', '.join(DIMENSIONS)}")
    settings = request.app[keys.SETTINGS]
    start, end = period(q.get("from"), q.get("to"), settings.server.timezone,
                        request.app[keys.BOARD].utcnow())
    targets = {queue.id: queue.target_answer_s for queue in settings.queues}
    db = request.app[keys.DB]
    return await db.report(by, start, end, targets, await db.scope_of(manager))


async def report(request: web.Request) -> web.Response:
    return reply(await _report(request))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


async def report_csv(request: web.Request) -> web.Response:
    """One row per key; one column per action type completed in the period."""
    data = await _report(request)
    types = sorted(data.actions_completed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, *(f"completed_{t}" for t in types)])
    for row in data.rows:
        values = msgspec.to_builtins(row)
        writer.writerow([*(_cell(values[c]) for c in CSV_COLUMNS),
                         *(str(row.actions_completed.get(t, 0)) for t in types)])
    name = f"report-{data.by}-{data.start:%Y%m%d}-{data.end:%Y%m%d}.csv"
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode(),  # BOM: spreadsheet programs read UTF-8
        content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def setup_reports(app: web.Application) -> None:
    app.router.add_get("/api/reports", report)
    app.router.add_get("/api/reports.csv", report_csv)
