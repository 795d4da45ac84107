"""A city of units with sessions at its sites, served through the real switchboard."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import keys
from tests.helpers import (
    _QUICK_HASH,
    add_terminal,
    connect,
    issue_token,
    quick_specialist,
    specialist_ready,
)

#: unit id -> (name, level, parent)
UNITS = {
    "sh": ("上海市", "city", None),
    "jd": ("嘉定区", "district", "sh"),
    "hp": ("黄浦区", "district", "sh"),
    "jd-xc": ("嘉定新城", "subdistrict", "jd"),
    "jd-at": ("安亭镇", "subdistrict", "jd"),
    "hp-wt": ("外滩街道", "subdistrict", "hp"),
}
#: site id -> unit; sessions per site (queued, answered and hung up)
SITES = {"site-xc": "jd-xc", "site-at": "jd-at", "site-jd": "jd", "site-hp": "hp-wt"}
CALLS = {"site-xc": 2, "site-at": 1, "site-jd": 1, "site-hp": 2}


async def build_units(app: web.Application) -> None:
    db = app[keys.DB]
    for unit_id, (name, level, parent) in UNITS.items():
        await db.add_unit(unit_id, name, level, parent)
    for site_id, unit_id in SITES.items():
        await db.add_site(site_id, f"站点 {site_id}", "service_centre", unit_id)


async def manager(app: web.Application, username: str, unit_id: str | None) -> str:
    """A manager of `unit_id`: a login token."""
    await app[keys.DB].add_user(username, "manager", _QUICK_HASH, username.title(),
                                unit_id=unit_id)
    return await issue_token(app, username)


async def serve_calls(client: Any) -> dict[str, list[str]]:
    """Every site's calls, answered by one specialist and hung up: site -> session ids."""
    app = client.server.app
    agent = await specialist_ready(client, await quick_specialist(app, "lin", {"tax": 1}))
    sessions: dict[str, list[str]] = {}
    for site_id, count in CALLS.items():
        for n in range(count):
            kiosk = await connect(client, await add_terminal(app, f"{site_id}-{n}", site_id))
            await kiosk.send({"type": "call.request", "queue": "tax"})
            offered = await agent.recv("call.offered")
            await agent.send({"type": "call.accept", "call_id": offered["call_id"]})
            connected = await kiosk.recv("call.connected")
            await kiosk.send({"type": "call.hangup", "call_id": offered["call_id"]})
            await kiosk.recv("call.ended")
            await agent.recv("agent.status", status="wrap_up")
            await agent.send({"type": "agent.wrapup_done"})
            await agent.recv("agent.status", status="available")
            await kiosk.close()
            sessions.setdefault(site_id, []).append(connected["session_id"])
    await agent.close()
    return sessions
