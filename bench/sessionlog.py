"""Latency of one session-log append, the durable step on every call's critical path.

Each `call.request`, offer and answer is logged before anyone hears of it
(`signaling.commit`), so an append's latency is added to call set-up (`bench.setup`)
once per step. Appends one event at a time, as a quiet server does (a group of
one: no savepoint), on SQLite (a temporary file) and on PostgreSQL (a temporary
database on `--pg-admin`, dropped after).

    python -m bench.sessionlog [--appends 300] [--pg-admin postgresql://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import time
import uuid

import asyncpg

from bench.common import percentile, table, workdir
from server.storage import Database
from server.storage.migrate import upgrade
from signaling import events as ev
from signaling.events import LogEvent


async def appends(url: str, count: int) -> tuple[list[float], list[float]]:
    """Milliseconds per append: a session's first event (`queued`: a new row), then the
    next (`offered`: an update of it)."""
    await upgrade(url)
    db = await Database.connect(url)
    now = dt.datetime.now(dt.UTC)
    first: list[float] = []
    next_: list[float] = []
    try:
        for i in range(count):
            sid = f"s{i}"
            started = time.perf_counter()
            await db.append([LogEvent(type=ev.QUEUED, ts=now, session_id=sid, call_id=f"c{i}",
                                      data={"queue": "tax"})])
            middle = time.perf_counter()
            await db.append([LogEvent(type=ev.OFFERED, ts=now, session_id=sid,
                                      data={"agent_id": "a1", "offer": 1, "queue": "tax"})])
            first.append(1000 * (middle - started))
            next_.append(1000 * (time.perf_counter() - middle))
    finally:
        await db.close()
    return first, next_


async def main(count: int, pg_admin: str) -> None:
    rows = []
    with workdir("vwin-bench-log-") as tmp:
        rows.append(("sqlite", *await appends(f"sqlite+aiosqlite:///{tmp / 'log.db'}", count)))
    name = f"vwin_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_admin)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        rows.append(("postgresql", *await appends(f"{base}/{name}", count)))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()
    print(table(
        f"Session-log append, one event per commit, {count} each, "
        f"load average {os.getloadavg()[0]:.1f}",
        ["storage", "event", "median ms", "p90 ms", "p99 ms"],
        [(store, kind, round(statistics.median(ms), 2), round(percentile(ms, 90), 2),
          round(percentile(ms, 99), 2))
         for store, first, later in rows for kind, ms in (("queued (new session)", first),
                                                          ("offered (update)", later))],
    ))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=300)
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    options = parser.parse_args()
    asyncio.run(main(options.appends, options.pg_admin))
