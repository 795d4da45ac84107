"""Managers' reports over HTTP: `GET /api/reports` (JSON), `/api/reports.csv`, and the
day's staffing estimate `GET /api/reports/staffing` (server/staffing.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from server import keys
from server.http.api import reply
from server.http.auth import fail, require
from server.http.csvsafe import neutralise
from server.http.params import Day, query, takes_query
from server.http.timespan import local_period, parse_when, period
from server.staffing import StaffingQueue, estimate
from server.storage.reports import Dimension, Report

MANAGER = "manager"
CSV_COLUMNS = (
    "key", "label", "sessions", "answered", "answered_within_target", "abandoned",
    "avg_wait_s", "p90_wait_s", "avg_talk_s", "rated", "avg_rating",
    "matters_opened", "matters_resolved", "matters_resolved_on_time",
    "appointments_booked", "appointments_served", "appointments_no_show",
    "appointments_cancelled", "avg_wait_appointment_s", "avg_wait_walk_in_s", "handoffs",
)


class ReportQuery(msgspec.Struct, forbid_unknown_fields=True):
    start: Day | None = msgspec.field(default=None, name="from")
    end: Day | None = msgspec.field(default=None, name="to")
    by: Dimension = "queue"


async def _report(request: web.Request) -> Report:
    manager = await require(request, MANAGER)
    q = query(request, ReportQuery)
    by = q.by
    settings = request.app[keys.SETTINGS]
    start, end = period(q.start, q.end, settings.server.timezone,
                        request.app[keys.BOARD].services.utcnow())
    targets = {queue.id: queue.target_answer_s for queue in settings.queues}
    db = request.app[keys.DB]
    return await db.report(by, start, end, targets, await db.scope_of(manager))


@takes_query(ReportQuery)
async def report(request: web.Request) -> web.Response:
    return reply(await _report(request))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return neutralise(value)


@takes_query(ReportQuery)
async def report_csv(request: web.Request) -> web.Response:
    """One row per key; one column per action type completed in the period."""
    data = await _report(request)
    types = sorted(data.actions_completed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, *(f"completed_{t}" for t in types)])
    settings = request.app[keys.SETTINGS]
    names = {"queue": {q.id: q.name for q in settings.queues},
             "department": {d.id: d.name for d in settings.departments}}.get(data.by, {})
    for row in data.rows:
        values = msgspec.to_builtins(row)
        values["label"] = names.get(row.key or "", values["label"])  # a name, not an id
        writer.writerow([*(_cell(values[c]) for c in CSV_COLUMNS),
                         *(str(row.actions_completed.get(t, 0)) for t in types)])
    span = local_period(data.start, data.end, settings.server.timezone, data.end)
    name = f"report-{data.by}-{span}.csv"
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode(),  # BOM: spreadsheet programs read UTF-8
        content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class StaffingQuery(msgspec.Struct, forbid_unknown_fields=True):
    day: Day | None = None


class Staffing(msgspec.Struct, kw_only=True):
    """Per queue and hour of one local day: arrivals, handle time, the specialists the
    queue's target needs (Erlang C, average wait) and those on duty."""

    day: str
    start: dt.datetime
    end: dt.datetime
    queues: list[StaffingQueue]


@takes_query(StaffingQuery)
async def staffing(request: web.Request) -> web.Response:
    manager = await require(request, MANAGER)
    q = query(request, StaffingQuery)
    settings = request.app[keys.SETTINGS]
    tz = settings.server.timezone
    day = q.day or request.app[keys.BOARD].services.utcnow().astimezone(
        ZoneInfo(tz)).date().isoformat()
    start, end = parse_when(day, tz, end=False), parse_when(day, tz, end=True)
    if start is None or end is None or len(day) != 10:
        fail(web.HTTPBadRequest, "invalid_query", "`day` is a local date, YYYY-MM-DD")
    db = request.app[keys.DB]
    arrivals, changes, skills = await db.staffing_inputs(start, end, await db.scope_of(manager))
    so_far = min(end, request.app[keys.BOARD].services.utcnow())  # nobody is on duty tomorrow
    queues = estimate(arrivals, changes, skills,
                      {queue.id: queue.target_answer_s for queue in settings.queues},
                      {queue.id: queue.wrapup_s for queue in settings.queues}, start, so_far,
                      tz)
    return reply(Staffing(day=day, start=start, end=end, queues=queues))


def setup_reports(app: web.Application) -> None:
    app.router.add_get("/api/reports", report)
    app.router.add_get("/api/reports.csv", report_csv)
    app.router.add_get("/api/reports/staffing", staffing)
