"""Managers' report figures, checked against numbers worked out by hand (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from server.storage import Database
from server.storage.matters import Matter
from server.storage.schema import sessions
from signaling.actions import Enterprise, JointAction, load_action_types
from tests.joint.conftest import uscc

TYPES = load_action_types(Path(__file__).resolve().parents[2] / "configs" / "actions.toml")
DEREG = "sole_proprietor_deregistration"
START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
TARGETS = {"tax": 60.0, "registration": 900.0}


def session(sid: str, queue: str, site: str, day: int, *, wait: float | None = None,
            talk: float | None = None, who: str | None = None, state: str = "ended",
            rating: int | None = None) -> dict[str, Any]:
    created = dt.datetime(2026, 3, day, 2, tzinfo=dt.UTC)
    return {"id": sid, "call_id": f"c-{sid}", "queue": queue, "state": state, "site_id": site,
            "site_name": f"Site {site}", "created_at": created,
            "answered_at": None if wait is None else created + dt.timedelta(seconds=wait),
            "wait_s": wait, "talk_s": talk, "specialist_id": who,
            "specialist_name": who and who.title(), "rating": rating}


async def seed(db: Database) -> None:
    await db.add_user("tom", "specialist", "x", "Tom", "tax", {"tax": 1})
    await db.add_user("rita", "specialist", "x", "Rita", "market_regulation", {})
    rows = [session(f"t{i}", "tax", "P1", 2, wait=10.0 * i, talk=100.0, who="tom",
                    rating={1: 5, 2: 3}.get(i)) for i in range(1, 11)]
    rows += [session("ab1", "tax", "P1", 3, state="abandoned"),
             session("ab2", "tax", "P1", 3, state="abandoned"),
             session("rj", "tax", "P1", 3, state="rejected"),
             session("old", "tax", "P1", 1, wait=999.0, talk=1.0, who="tom")]
    rows[-1]["created_at"] = START - dt.timedelta(days=1)
    rows += [session("r1", "registration", "P2", 4, wait=5.0, talk=200.0, who="rita"),
             session("r2", "registration", "P2", 4, wait=15.0, talk=400.0, who="rita")]
    async with db._write() as conn:
        await conn.execute(sessions.insert(), rows)
    await action(db, "a-done", "t1", START + dt.timedelta(days=5), sign_all=True)
    await action(db, "a-open", "t2", START + dt.timedelta(days=5), sign_all=False)
    await action(db, "a-before", "old", START - dt.timedelta(days=3), sign_all=True)
    opened = START + dt.timedelta(days=2)
    for mid, who, dept, sid in (("m1", "tom", "tax", "t1"), ("m2", "rita", "market_regulation",
                                                             None)):
        await db.open_matter(Matter(
            id=mid, session_id=sid, enterprise_name="E", enterprise_uscc=None,
            description="d", matter_class="general", department=dept, state="open",
            opened_by=who, opened_at=opened, due=dt.date(2026, 3, 6), updated_at=opened))
    await db.change_matter("m1", "resolved", "done", "tom", opened + dt.timedelta(days=1),
                           lambda m, when: True)


async def action(db: Database, action_id: str, session_id: str, when: dt.datetime,
                 sign_all: bool) -> None:
    made, event = JointAction.start(action_id, TYPES[DEREG], Enterprise(name="E", uscc=uscc()),
                                    started_by="rita", now=when)
    await db.create_action(made, event, session_id=session_id, call_id=None)
    signers = [("licence_cancelled", "market_regulation", "rita"),
               ("tax_clearance_confirmed", "tax", "tom")][: 2 if sign_all else 1]
    for step, dept, who in signers:

        def signed(made: JointAction, s: str = step, d: str = dept, w: str = who) -> list[Any]:
            return made.sign(s, d, w, when + dt.timedelta(hours=1))

        await db.change_action(action_id, TYPES, signed)


def figures(report: Any) -> dict[str | None, tuple[Any, ...]]:
    return {r.key: (r.sessions, r.answered, r.answered_within_target, r.abandoned,
                    r.avg_wait_s, None if r.p90_wait_s is None else round(r.p90_wait_s, 6),
                    r.avg_talk_s, r.rated, r.avg_rating, r.actions_completed,
                    r.matters_opened, r.matters_resolved, r.matters_resolved_on_time)
            for r in report.rows}


async def test_report_by_queue_and_department_match_hand_counts(database: Database) -> None:
    await seed(database)
    by_queue = await database.report("queue", START, END, TARGETS)
    assert figures(by_queue) == {
        # waits 10..100: avg 55, p90 = 90 + 0.1 * (100 - 90); within 60 s: 6
        "tax": (12, 10, 6, 2, 55.0, 91.0, 100.0, 2, 4.0, {DEREG: 1}, 1, 1, 1),
        "registration": (2, 2, 2, 0, 10.0, 14.0, 300.0, 0, None, {}, 0, 0, 0),
        None: (0, 0, 0, 0, None, None, None, 0, None, {}, 1, 0, 0),  # matter outside a session
    }
    assert by_queue.actions_completed == {DEREG: 1}
    by_department = await database.report("department", START, END, TARGETS)
    assert figures(by_department) == {
        "tax": (10, 10, 6, 0, 55.0, 91.0, 100.0, 2, 4.0, {DEREG: 1}, 1, 1, 1),
        "market_regulation": (2, 2, 2, 0, 10.0, 14.0, 300.0, 0, None, {DEREG: 1}, 1, 0, 0),
        None: (2, 0, 0, 2, None, None, None, 0, None, {}, 0, 0, 0),
    }
    by_specialist = await database.report("specialist", START, END, TARGETS)
    assert {r.key: (r.label, r.actions_completed) for r in by_specialist.rows} == {
        "tom": ("Tom", {DEREG: 1}), "rita": ("Rita", {DEREG: 1}), None: (None, {})}
    by_site = await database.report("site", START, END, TARGETS)
    assert {r.key: (r.label, r.sessions) for r in by_site.rows} == {
        "P1": ("Site P1", 12), "P2": ("Site P2", 2), None: (None, 0)}


async def test_p90_of_skewed_waits_and_answered_rejected_sessions(database: Database) -> None:
    # tax: nine waits of 0 s and one of 1000 s, mean 100 s: the 90th percentile (rank 8.1)
    # is 0 + 0.1 * 1000 = 100 s, its lower neighbour below the mean.
    rows = [session(f"t{i}", "tax", "P1", 2, wait=0.0, talk=1.0, who="tom") for i in range(9)]
    rows += [session("t9", "tax", "P1", 2, wait=1000.0, talk=1.0, who="tom"),
             session("r1", "registration", "P1", 2, wait=200.0, talk=1.0, who="tom"),
             session("r2", "registration", "P1", 2, wait=300.0, talk=1.0, who="tom"),
             session("g1", "general", "P1", 2, wait=7.0, who="tom", state="rejected")]
    async with database._write() as conn:
        await conn.execute(sessions.insert(), rows)
    report = await database.report("queue", START, END, TARGETS)
    assert {r.key: (r.sessions, r.answered, r.avg_wait_s,
                    None if r.p90_wait_s is None else round(r.p90_wait_s, 6))
            for r in report.rows} == {
        "tax": (10, 10, 100.0, 100.0),
        "registration": (2, 2, 250.0, 290.0),  # 200 + 0.9 * (300 - 200)
        "general": (0, 0, None, 7.0),  # a rejected session counts only in the percentile
    }
