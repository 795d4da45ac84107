"""Latency of one session-log append, the durable step on every call's critical path.

Each `call.request`, offer and answer is logged before anyone hears of it
(`signaling.commit`), so an append's latency is added to call set-up (`bench.setup`)
once per step. Appends one event at a time, as a quiet server does (a group of
one: no savepoint), on SQLite (a temporary file) and on PostgreSQL (a temporary
database on `--pg-admin`, dropped after).

    python -m bench.sessionlog [--appends 300] [--pg-admin postgresql://postgres@127.0.0.1/test]

With `--concurrent`, PostgreSQL only: processes appending at once to sessions of their
own and to shared ones, one table line per number of groups in flight (1 is one group at
a time, the code before `lanes`), the modes alternated over `--rounds`
(`bench.sessionlog_load`).

    python -m bench.sessionlog --concurrent [--processes 2] [--tasks 40] [--calls 15]
        [--lanes 1,4] [--rounds 2] [--pause-ms 20] [--busy-ms 1] [--baseline ../main]
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

from bench import sessionlog_load
from bench.common import percentile, table, workdir
from server.storage import Database
from server.storage.migrate import upgrade
from signaling import events as ev
from signaling.events import LogEvent


async def appends(url: str, count: int) -> tuple[list[float], list[float], list[float]]:
    """Milliseconds per append: a session's first event (`queued`: a new row), then the
    next (`offered`: an update of it); then per `session_members` of each session (the
    check before every wrap-up note and rating)."""
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
        members: list[float] = []
        for i in range(count):
            started = time.perf_counter()
            await db.session_members(f"s{i}")
            members.append(1000 * (time.perf_counter() - started))
    finally:
        await db.close()
    return first, next_, members


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
         for store, first, later, members in rows
         for kind, ms in (("queued (new session)", first), ("offered (update)", later),
                          ("session_members (read)", members))],
    ))


async def concurrent(options: argparse.Namespace) -> None:
    """The `--concurrent` table: each mode in turn, `--rounds` times."""
    name = f"vwin_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(options.pg_admin)
    base = options.pg_admin.rsplit("/", 1)[0]
    rows = []
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
        await upgrade(url)
        loads = []
        load = sessionlog_load.Load(options.processes, options.tasks, options.calls,
                                    options.pause_ms, options.busy_ms)
        modes: list[tuple[str, int, str | None]] = [
            (f"{n}", int(n), None) for n in options.lanes.split(",")]
        if options.baseline:
            modes.insert(0, (f"baseline {options.baseline}", 1, options.baseline))
        for round_ in range(options.rounds):
            for label, lanes, root in modes:
                figures, locks = await sessionlog_load.run_mode(
                    url, f"{base}/{name}", name, lanes, load, root)
                loads.append(os.getloadavg()[0])
                rows.append(sessionlog_load.row(f"{label} (round {round_ + 1})", figures,
                                                locks))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(table(
        f"Session-log appends on PostgreSQL, {options.processes} processes x "
        f"{options.tasks} tasks x {options.calls} calls (5 appends a call), pauses "
        f"{options.pause_ms} ms, loops busy {options.busy_ms} ms in 2, "
        f"load average {min(loads):.1f}-{max(loads):.1f}",
        sessionlog_load.HEADERS, rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=300)
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--concurrent", action="store_true")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--lanes", default="1,4")
    parser.add_argument("--baseline", help="root of a checkout to compare (a worktree of main)")
    parser.add_argument("--pause-ms", type=float, default=20.0)
    parser.add_argument("--busy-ms", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    if options.concurrent:
        asyncio.run(concurrent(options))
    else:
        asyncio.run(main(options.appends, options.pg_admin))
