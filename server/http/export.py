"""CSV export of the session list, streamed page by page (keyset pages of 500)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from server import keys
from server.http.csvsafe import neutralise
from server.http.timespan import local_period

COLUMNS = [
    "id",
    "created_at",
    "queue",
    "queue_name",
    "state",
    "site_id",
    "site_name",
    "terminal_id",
    "terminal_name",
    "enterprise_name",
    "enterprise_uscc",
    "specialist_id",
    "specialist_name",
    "answered_at",
    "ended_at",
    "wait_s",
    "talk_s",
    "end_reason",
    "outcome",
    "notes",
    "rating",
    "rating_comment",
]


def _cell(value: Any, zone: ZoneInfo) -> str:
    """Times as ISO 8601 with the configured zone's offset (+08:00), as people read them;
    text that would start a formula neutralised (server/http/csvsafe.py)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(zone).isoformat()
    return neutralise(value)


async def stream_sessions_csv(request: web.Request, filters: dict[str, Any]) -> web.StreamResponse:
    settings = request.app[keys.SETTINGS]
    tz = settings.server.timezone
    zone = ZoneInfo(tz)
    names = {q.id: q.name for q in settings.queues}
    span = local_period(filters.get("start"), filters.get("end"), tz, dt.datetime.now(dt.UTC))
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="sessions-{span}.csv"',
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # BOM: spreadsheet software then reads the Chinese text as UTF-8
    writer.writerow(COLUMNS)
    cursor: str | None = None
    db = request.app[keys.DB]
    while True:
        rows, cursor = await db.list_sessions(limit=500, cursor=cursor, **filters)
        for row in rows:
            data = {field: getattr(row, field) for field in row.__struct_fields__}
            data["queue_name"] = names.get(data.get("queue") or "", data.get("queue"))
            writer.writerow([_cell(data.get(c), zone) for c in COLUMNS])
        await response.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        if cursor is None:
            break
    await response.write_eof()
    return response
