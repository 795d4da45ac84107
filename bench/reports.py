"""Managers' reports over a year of data: each report must take under 1 s.

Seeds 100,000 sessions over a year (20 sites, 4 queues, 60 specialists in 3
departments; 8 % abandoned, 1 % rejected, 40 % rated), 3,000 joint actions
(completed, open, rejected) with their steps, and 4,000 pending matters, with
bulk inserts, into a fresh SQLite file and a fresh PostgreSQL database; then
times `Database.report` plus the JSON encoding, for the whole year by site,
queue, department and specialist (best of 3 runs, and the first, cold run);
on SQLite once more after ANALYZE (PostgreSQL is analysed right after seeding).

    python -m bench.reports [--sessions 100000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import sqlalchemy as sa

from bench.common import table
from server.storage import Database
from server.storage.migrate import upgrade
from server.storage.schema import (
    joint_action_steps,
    joint_actions,
    pending_matters,
    sessions,
    users,
)

YEAR = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
QUEUES = {"tax": 900.0, "registration": 900.0, "deregistration": 900.0, "general": 600.0}
DEPARTMENTS = ("tax", "market_regulation", "social_security")
CHUNK = 5000
PG_LOGINS = (("postgres", "postgres"), ("root", "postgres"), ("root", "test"))


def _specialists() -> list[dict[str, Any]]:
    return [{"id": f"s{i:02d}", "username": f"s{i:02d}", "role": "specialist",
             "password_hash": "x", "name": f"Specialist {i}", "department": DEPARTMENTS[i % 3],
             "skills": {}, "disabled": False, "created_at": YEAR} for i in range(60)]


def _sessions(count: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for n in range(count):
        created = YEAR + dt.timedelta(seconds=rng.uniform(0, 365 * 86400))
        queue = rng.choice(list(QUEUES))
        site = rng.randrange(20)
        fate = rng.random()
        row: dict[str, Any] = {
            "id": f"ses-{n}", "call_id": f"c-{n}", "queue": queue, "site_id": f"site{site}",
            "site_name": f"Site {site}", "terminal_id": f"T{site}-{n % 3}",
            "created_at": created, "state": "ended",
        }
        if fate < 0.01:
            row["state"] = "rejected"
        elif fate < 0.09:
            row["state"] = "abandoned"
            row["ended_at"] = created + dt.timedelta(seconds=rng.uniform(30, 1200))
        else:
            wait = rng.expovariate(1 / 300)
            talk = rng.uniform(60, 1800)
            who = rng.randrange(60)
            row |= {"answered_at": created + dt.timedelta(seconds=wait), "wait_s": wait,
                    "talk_s": talk, "specialist_id": f"s{who:02d}",
                    "specialist_name": f"Specialist {who}",
                    "ended_at": created + dt.timedelta(seconds=wait + talk),
                    "rating": rng.randint(1, 5) if rng.random() < 0.4 else None}
        rows.append(row)
    return rows


def _actions(count: int, session_ids: list[str], rng: random.Random
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    actions, steps = [], []
    for n in range(count):
        created = YEAR + dt.timedelta(seconds=rng.uniform(0, 360 * 86400))
        state = rng.choices(["completed", "open", "rejected"], [0.8, 0.15, 0.05])[0]
        closed = created + dt.timedelta(hours=rng.uniform(0.1, 48)) if state != "open" else None
        kind = rng.choice(["sole_proprietor_deregistration", "registered_address_change"])
        actions.append({"id": f"a{n}", "type": kind, "state": state, "enterprise_name": "E",
                        "enterprise_uscc": "91310114MA1GT3000U", "fields": {},
                        "session_id": rng.choice(session_ids), "created_by": "s01",
                        "created_at": created, "closed_at": closed})
        for position, dept in enumerate(("market_regulation", "tax")):
            signed = state == "completed" or (state == "open" and position == 0)
            signer = f"s{rng.randrange(20) * 3 + (1 if dept == 'market_regulation' else 0):02d}"
            steps.append({"action_id": f"a{n}", "step_id": f"step{position}",
                          "position": position, "department": dept,
                          "signed_by": signer if signed else None,
                          "signed_at": closed if signed else None})
    return actions, steps


def _matters(count: int, session_ids: list[str], rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for n in range(count):
        opened = YEAR + dt.timedelta(seconds=rng.uniform(0, 360 * 86400))
        resolved = rng.random() < 0.85
        resolved_at = opened + dt.timedelta(days=rng.uniform(0, 12)) if resolved else None
        due = (opened + dt.timedelta(days=rng.choice([0, 4, 10]))).date()
        rows.append({
            "id": f"m{n}", "session_id": rng.choice(session_ids) if rng.random() < 0.9 else None,
            "enterprise_name": "E", "description": "d",
            "matter_class": rng.choice(["simple", "general", "complex"]),
            "department": rng.choice(DEPARTMENTS), "state": "resolved" if resolved else "open",
            "opened_by": f"s{rng.randrange(60):02d}", "opened_at": opened, "due": due,
            "updated_at": resolved_at or opened,
            "resolved_by": f"s{rng.randrange(60):02d}" if resolved else None,
            "resolved_at": resolved_at, "resolution": "done" if resolved else None,
            "resolved_on_time": (resolved_at.date() <= due) if resolved_at else None,
        })
    return rows


async def _bulk(db: Database, target: sa.Table, rows: list[dict[str, Any]]) -> None:
    columns = [c.name for c in target.c]
    full = [{c: row.get(c) for c in columns} for row in rows]  # one shape: one statement
    for start in range(0, len(full), CHUNK):
        async with db._write() as conn:
            await conn.execute(target.insert(), full[start:start + CHUNK])


async def seed(db: Database, count: int) -> float:
    """Fill an empty database; the seconds it took."""
    rng = random.Random(6)
    began = time.perf_counter()
    session_rows = _sessions(count, rng)
    ids = [r["id"] for r in session_rows]
    actions, steps = _actions(count * 3 // 100, ids, rng)
    await _bulk(db, users, _specialists())
    await _bulk(db, sessions, session_rows)
    await _bulk(db, joint_actions, actions)
    await _bulk(db, joint_action_steps, steps)
    await _bulk(db, pending_matters, _matters(count * 4 // 100, ids, rng))
    if db.dialect == "postgresql":
        async with db._write() as conn:
            await conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - began


async def time_reports(db: Database) -> list[tuple[str, float, float, float, int]]:
    """(dimension, cold seconds, best of 3 seconds, best of 3 CPU seconds, rows), whole year.

    CPU: this process's threads (SQLite runs in them; PostgreSQL's server is not
    counted), which a busy machine inflates far less than the wall clock.
    """
    results = []
    end = YEAR + dt.timedelta(days=365)
    for by in ("site", "queue", "department", "specialist"):
        runs, cpu = [], []
        rows = 0
        for _ in range(4):
            began, began_cpu = time.perf_counter(), time.process_time()
            report = await db.report(by, YEAR, end, QUEUES)
            msgspec.json.encode(report)
            runs.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
            rows = len(report.rows)
        results.append((by, runs[0], min(runs[1:]), min(cpu[1:]), rows))
    return results


async def _pg_database() -> tuple[str, str, str]:
    for user, database in PG_LOGINS:
        try:
            admin = await asyncpg.connect(host="127.0.0.1", user=user, database=database)
        except (OSError, asyncpg.PostgresError):
            continue
        name = f"vwin_bench_{uuid.uuid4().hex[:12]}"
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return name, user, f"postgresql+asyncpg://{user}@127.0.0.1:5432/{name}"
    raise SystemExit("PostgreSQL at 127.0.0.1:5432 is unreachable")


async def _drop(name: str, user: str) -> None:
    admin = await asyncpg.connect(host="127.0.0.1", user=user, database="postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run(backend: str, count: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        pg: tuple[str, str] | None = None
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        else:
            name, user, url = await _pg_database()
            pg = (name, user)
        try:
            await upgrade(url)
            db = await Database.connect(url)
            try:
                seeded = await seed(db, count)
                timings = await time_reports(db)
                if backend == "sqlite":  # the planner's choices change once it has statistics
                    async with db._write() as conn:
                        await conn.exec_driver_sql("ANALYZE")
                    timings += [(f"{by}, after ANALYZE", cold, best, cpu, n)
                                for by, cold, best, cpu, n in await time_reports(db)]
            finally:
                await db.close()
        finally:
            if pg is not None:
                await _drop(*pg)
    rows = [(by, f"{cold * 1000:.0f} ms", f"{best * 1000:.0f} ms", f"{cpu * 1000:.0f} ms", n,
             "yes" if best < 1 else "NO") for by, cold, best, cpu, n in timings]
    title = f"Reports over {count:,} sessions, one year, {backend} (seeded in {seeded:.1f} s)"
    return table(title, ["by", "first run", "best of 3", "CPU, best of 3", "rows", "< 1 s"],
                 rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        print(asyncio.run(run(backend.strip(), args.sessions)), flush=True)


if __name__ == "__main__":
    main()
