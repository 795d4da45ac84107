"""Hand-off tickets in the database every node shares: one use, whoever races; purged."""

from __future__ import annotations

import asyncio
import datetime as dt

from server.storage import Database
from signaling.backend import Ticket

NOW = dt.datetime.now(dt.UTC)


def ticket(call_id: str, expires_in_s: float) -> Ticket:
    return Ticket(call_id=call_id, terminal_id="T1", visitor_id="v_" + call_id,
                  expires_at=NOW + dt.timedelta(seconds=expires_in_s))


async def test_a_ticket_is_used_once_however_many_ask_together(database: Database) -> None:
    await database.add_handoff_ticket("h1", ticket("c1", 600))
    stored = await database.handoff_ticket("h1")
    assert stored == ticket("c1", 600) and not stored.used
    won = await asyncio.gather(*(database.use_handoff_ticket("h1") for _ in range(20)))
    assert won.count(True) == 1
    used = await database.handoff_ticket("h1")
    assert used is not None and used.used
    assert await database.handoff_ticket("unknown") is None


async def test_purge_forgets_expired_and_long_used_tickets(database: Database) -> None:
    await database.add_handoff_ticket("open", ticket("c1", 600))
    await database.add_handoff_ticket("expired", ticket("c2", -1))
    await database.add_handoff_ticket("used", ticket("c3", 600))
    await database.use_handoff_ticket("used")
    await database.add_handoff_ticket("used-long-ago", ticket("c4", -2 * 86400))
    await database.use_handoff_ticket("used-long-ago")
    assert await database.purge_handoff_tickets(NOW) == 2
    kept = {h: await database.handoff_ticket(h) is not None
            for h in ("open", "expired", "used", "used-long-ago")}
    assert kept == {"open": True, "expired": False, "used": True, "used-long-ago": False}


async def test_a_ticket_is_welcomed_once_and_names_its_phones_call(database: Database) -> None:
    await database.add_handoff_ticket("h1", ticket("c1", 600))
    assert await database.visitor_call("v_c1") is None  # not opened: no phone yet
    await database.use_handoff_ticket("h1")
    assert await database.visitor_call("v_c1") == "c1"
    assert await database.visitor_call("v_unknown") is None
    opened = await database.handoff_ticket("h1")
    assert opened is not None and opened.used and not opened.welcomed
    await database.welcome_handoff_ticket("h1")
    await database.welcome_handoff_ticket("h1")  # a resumed phone's hello: kept as it was
    welcomed = await database.handoff_ticket("h1")
    assert welcomed is not None and welcomed.welcomed
