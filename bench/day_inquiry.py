"""What happened to a call the day's checks found wrong, told as one timeline.

A failed day in CI leaves nothing behind but its report, so the report carries, for each
call it names (lost, unrecorded), what the kiosk and desks saw (the ledger, with each
party's links to recorders: offers sent, answer heard, ICE state at the end), what the log
says (the session's events), what the recorders wrote (segments) and the faults, in the
order they happened, in seconds from the call's request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.day_checks import LedgerView
from bench.day_monitor import Fault
from server.storage.schema import recordings, session_events, sessions

Row = dict[str, Any]
Entry = tuple[float, str]
MAX_CALLS = 5  # a day gone badly wrong names many: the first few tell the shape
LEDGER_TIMES = ("requested", "cancelled", "answered", "dropped_at", "ended")


def _unix(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()


def _brief(data: Row) -> str:
    keep = ("recorder", "segment", "reason", "by", "agent_id", "participant_id", "node")
    return " ".join(f"{k}={data[k]}" for k in keep if data.get(k) not in (None, ""))


def _call_of(ids: dict[str, str], session_id: Any) -> str | None:
    return next((c for c, s in ids.items() if s == str(session_id)), None)


def _links(who: str, links: Iterable[Row]) -> list[Entry]:
    out: list[Entry] = []
    for link in links:
        out.append((link["offered"], f"{who} offers to {link['recorder']}"))
        if link.get("answered"):
            out.append((link["answered"], f"{who} hears {link['recorder']}'s answer"))
        end = link.get("closed") or link.get("left")
        if end:
            out.append((end, f"{who} closes its link to {link['recorder']}: offer sent "
                             f"{link['sent']}x, ICE {link.get('ice')}"))
    return out


async def timelines(db_url: str, call_ids: list[str], ledger: LedgerView,
                    faults: list[Fault]) -> list[str]:
    """One block of lines per call (the first `MAX_CALLS`)."""
    call_ids = call_ids[:MAX_CALLS]
    if not call_ids:
        return []
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            ids = {r.call_id: str(r.id) for r in await conn.execute(
                sa.select(sessions.c.call_id, sessions.c.id)
                .where(sessions.c.call_id.in_(call_ids)))}
            events = (await conn.execute(
                sa.select(session_events).where(sa.or_(
                    session_events.c.call_id.in_(call_ids),
                    session_events.c.session_id.in_(list(ids.values()))))
                .order_by(session_events.c.id))).all()
            segments = (await conn.execute(
                sa.select(recordings).where(recordings.c.session_id.in_(list(ids.values())))
            )).all()
    finally:
        await engine.dispose()
    lines: list[str] = []
    for call_id in call_ids:
        entries: list[Entry] = []
        for v in (v for v in ledger.visits if v.get("call_id") == call_id):
            entries += [(v[k], f"kiosk {v['terminal']}: {k}") for k in LEDGER_TIMES
                        if isinstance(v.get(k), float)]
            entries += _links(f"kiosk {v['terminal']}", v.get("links", []))
        for a in (a for a in ledger.answers if a["call_id"] == call_id):
            entries.append((a["t"], f"desk {a['specialist']} hears call.connected"
                                    f"{' (resumed)' if a.get('resumed') else ''}"))
        for m in (m for m in ledger.media if m["call_id"] == call_id):
            entries += _links(f"desk {m['party']}", m["links"])
        for e in (e for e in events if call_id in (e.call_id, _call_of(ids, e.session_id))):
            entries.append((_unix(e.ts) or 0.0, f"log {e.type} {_brief(e.data or {})}"))
        for s in (s for s in segments if str(s.session_id) == ids.get(call_id)):
            who = f"segment {s.participant_id[:12]}#{s.segment}@{s.recorder}"
            entries.append((_unix(s.created_at) or 0.0, f"{who} opened"))
            if s.ended_at is not None:
                entries.append((_unix(s.ended_at) or 0.0, f"{who} closed {s.state}, "
                                f"{s.size_bytes or 0} bytes, {s.duration_s or 0:.1f} s"))
        if not entries:
            continue
        start = min(t for t, _ in entries)
        end = max(t for t, _ in entries)
        entries += [(f.started, f"FAULT {f.name} begins") for f in faults
                    if start - 30 <= f.started <= end + 5]
        entries += [(f.recovered, f"FAULT {f.name} over") for f in faults
                    if f.recovered and start - 30 <= f.recovered <= end + 5]
        lines.append(f"  timeline of {call_id} (s from its first entry, "
                     f"{dt.datetime.fromtimestamp(start, dt.UTC):%H:%M:%S} UTC):")
        lines += [f"    {t - start:+8.2f} {what}" for t, what in sorted(entries)]
    return lines
