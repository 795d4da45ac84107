"""Appointments, hand-offs, forms and the lunch closure: what the visitors saw against the log.

Per queue and in total: appointments booked, kept (the code let the call in) and
no-shows (the log's `no_show`), hand-offs (a phone took the call over), forms signed,
requests refused because the queue was closed. Mismatches (the bench fails on any):
a kept appointment whose answered call the log does not have `served` with that
session; a visitor who never came (or came outside the window) whose booking the
log does not have `no_show`; a hand-off the phone saw that the log has no
`handed_off` event for, or one the log has that no visitor saw; a form the visitor
saw signed that the log does not have signed with the same SHA-256, or one signed
in the log that no visitor saw; a `closed` refusal whose `opens_at` is not the
reopening after the closure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.day_hours import Schedule, opens_at_matches
from server.storage.appointments import appointments
from server.storage.schema import forms, session_events, sessions
from signaling import events as ev

Row = dict[str, Any]
COLUMNS = ("booked", "kept", "no-shows", "hand-offs", "forms signed", "refused closed")


@dataclass
class ServiceLog:
    bookings: dict[str, Row]  # by code
    handed_off: set[str]  # session ids with a `handed_off` event
    forms: dict[str, Row]  # by form id
    queue_of: dict[str, str]  # session id -> queue
    closed: Counter[str]  # rejected `closed`, by queue


async def read_service_log(db_url: str) -> ServiceLog:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            bookings = {str(r.code): dict(r._mapping)
                        for r in await conn.execute(sa.select(appointments))}
            handed = {str(r.session_id) for r in await conn.execute(
                sa.select(session_events.c.session_id)
                .where(session_events.c.type == ev.HANDED_OFF))}
            signed = {str(r.id): dict(r._mapping) for r in await conn.execute(
                sa.select(forms.c.id, forms.c.session_id, forms.c.state, forms.c.sha256))}
            rows = list(await conn.execute(sa.select(sessions.c.id, sessions.c.queue,
                                                     sessions.c.state, sessions.c.end_reason)))
    finally:
        await engine.dispose()
    closed = Counter(str(r.queue) for r in rows
                     if r.state == ev.STATE_REJECTED and r.end_reason == "closed")
    return ServiceLog(bookings, handed, signed, {str(r.id): str(r.queue) for r in rows}, closed)


@dataclass
class ServiceFigures:
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # queue -> column -> n
    mismatches: list[str] = field(default_factory=list)
    # requests sent again by kiosks refused closed (the first reply lost with the socket):
    # each may be refused, and logged, once more
    resent_closed: Counter[str] = field(default_factory=Counter)

    def add(self, queue: str, column: str) -> None:
        for key in (queue, "total"):
            self.counts.setdefault(key, Counter())[column] += 1

    def table(self) -> list[list[object]]:
        order = [*sorted(k for k in self.counts if k != "total"), "total"]
        return [[q, *(self.counts.get(q, Counter())[c] for c in COLUMNS)] for q in order]


def check_services(visits: list[Row], no_kiosk: list[str], log: ServiceLog,
                   session_of: dict[str, str], schedule: Schedule) -> ServiceFigures:
    """`visits`: the ledger's; `no_kiosk`: codes of booked visitors who found no free
    kiosk; `session_of`: the log's session id by call id."""
    out = ServiceFigures()
    never = set(no_kiosk)
    for v in visits:
        _visit(v, session_of.get(v.get("call_id") or ""), log, never, schedule, out)
    _log_side(visits, never, log, session_of, out)
    return out


def _visit(v: Row, session: str | None, log: ServiceLog, never: set[str], schedule: Schedule,
           out: ServiceFigures) -> None:
    queue, code = v["queue"], v.get("appointment")
    if code:
        out.add(queue, "booked")
        _appointment(v, code, session, log, never, out)
    if v.get("handoff") == "phone":
        out.add(queue, "hand-offs")
        if session not in log.handed_off:
            out.mismatches.append(f"{v['call_id']}: handed over to a phone, the log has "
                                  "no handed_off")
    if v.get("form_sha256"):
        out.add(queue, "forms signed")
        row = log.forms.get(v["form_id"])
        if row is None or row["state"] != "signed" or row["sha256"] != v["form_sha256"]:
            out.mismatches.append(f"form {v['form_id']}: the visitor saw it signed, the "
                                  f"log has {row and (row['state'], row['sha256'])}")
    if v.get("outcome") == "rejected" and "closed_opens_at" in v:
        out.add(queue, "refused closed")
        out.resent_closed[queue] += v.get("resent", 0)
        if not opens_at_matches(v["closed_opens_at"], schedule):
            out.mismatches.append(f"{v['terminal']}: refused closed, opens_at "
                                  f"{v['closed_opens_at']} is not the reopening")


def _log_side(visits: list[Row], never: set[str], log: ServiceLog,
              session_of: dict[str, str], out: ServiceFigures) -> None:
    """What the log has that no visitor saw; the booked visitors who found no kiosk."""
    seen_handoffs = {session_of.get(v.get("call_id") or "") for v in visits
                     if v.get("handoff") == "phone"}
    for session in sorted(log.handed_off - seen_handoffs):
        out.mismatches.append(f"session {session}: handed_off in the log, no phone saw it")
    seen_forms = {v["form_id"] for v in visits if v.get("form_sha256")}
    # signed as the closing time cut the visit short: the visitor stopped listening
    cut_forms = {v["form_id"] for v in visits if v.get("cut") and v.get("form_id")}
    for form_id, row in sorted(log.forms.items()):
        if row["state"] == "signed" and form_id not in seen_forms | cut_forms:
            out.mismatches.append(f"form {form_id}: signed in the log, no visitor saw it")
    for code in sorted(never):
        row = log.bookings.get(code)
        if row is not None:
            out.add(row["queue"], "booked")
            _no_show(code, row, out)
    for queue, n in log.closed.items():
        saw = out.counts.get(queue, Counter())["refused closed"]
        if not saw <= n <= saw + out.resent_closed[queue]:
            out.mismatches.append(f"{queue}: the log has {n} requests rejected closed, the "
                                  f"kiosks saw {saw}")

def _appointment(v: Row, code: str, session: str | None, log: ServiceLog, never: set[str],
                 out: ServiceFigures) -> None:
    row = log.bookings.get(code)
    if row is None:
        out.mismatches.append(f"appointment {code}: booked, not in the log")
        return
    if v.get("kept"):
        out.add(v["queue"], "kept")
        if "answered" in v and (row["state"] != "served" or row["session_id"] != session):
            out.mismatches.append(f"appointment {code}: kept and answered in {session}, the "
                                  f"log has {row['state']} in {row['session_id']}")
    elif v.get("arrive") == "no_show" or v.get("appointment_refused") == "appointment_window":
        _no_show(code, row, out)
        never.discard(code)


def _no_show(code: str, row: Row, out: ServiceFigures) -> None:
    out.add(row["queue"], "no-shows")
    if row["state"] != "no_show":
        out.mismatches.append(f"appointment {code}: the visitor never came in its window, the "
                              f"log has {row['state']}")
