"""CSV export of the session list, streamed page by page (keyset pages of 500)."""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec
from aiohttp import web

from server import keys
from server.http.csvsafe import neutralise

COLUMNS = [
    "id",
    "created_at",
    "queue",
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


async def stream_sessions_csv(request: web.Request, filters: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="sessions.csv"',
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
            data = msgspec.to_builtins(row)
            writer.writerow([neutralise(data.get(c)) for c in COLUMNS])
        await response.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        if cursor is None:
            break
    await response.write_eof()
    return response
