"""Session-log appends under load: where an append's time goes (`bench.sessionlog --concurrent`).

Several processes (nodes) on one PostgreSQL database, each with tasks that run calls
step after step as the switchboard does (`queued`, `offered`, `answered` with the
specialist joining, `ended` with them leaving: one append each, sessions of their own),
and between the steps a chat line to a session every process shares (the two nodes of a
call touch the same rows). Steps are spaced by random pauses (exponential, `pause_ms` on
average: appends arrive at random, not in lockstep), and each process's loop may be kept
busy (`busy_ms` of CPU, then as long asleep: a node's loop serving its websockets, where
every round trip of a group waits for a turn). Each mode is a number of groups one
process may commit at once (`SessionLog.groups_in_flight`): 1 is one group at a time.
With the root of another checkout (`--baseline`, e.g. a worktree of main), the appending
processes run that code's `server` and `signaling`: the code before this change, in the
same run (queued / in-group times are then unknown: it has no `group_observer`).

Counted per mode: append p50/p99; each batch's time queued before its group began and
in its group (BEGIN to COMMIT returned); group sizes; round trips per group (statements,
BEGIN, COMMIT, ROLLBACK, the pool's rollback-on-return); and, sampled every 20 ms from
`pg_stat_activity`, how often a backend waited on a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import multiprocessing
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
import sqlalchemy as sa

from bench import trips
from bench.common import percentile

if TYPE_CHECKING:  # imported where they run: from `--baseline`'s checkout in its processes
    from server.storage import Database
    from server.storage.group import Group

SHARED_SESSIONS = 4  # sessions every process appends chat to
SAMPLE_S = 0.02  # pg_stat_activity sampling period


@dataclass
class Figures:
    """What one process measured (picklable: sent back to the parent)."""

    ms: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    group_sizes: list[int] = field(default_factory=list)  # ms: "append", "queued", "in group"
    trips: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, other: Figures) -> None:
        for kind, values in other.ms.items():
            self.ms[kind] += values
        self.group_sizes += other.group_sizes
        self.trips.update(other.trips)
        self.seconds = max(self.seconds, other.seconds)


def _count_trip(counts: Counter[str]) -> Callable[[str], None]:
    """Each statement `bench.trips.observed` sees, counted as a BEGIN, COMMIT, ROLLBACK or
    other statement (SAVEPOINTs among these)."""
    def seen(statement: str) -> None:
        word = trips.kind(statement)
        counts[word.lower() if word in ("BEGIN", "COMMIT", "ROLLBACK") else "statement"] += 1
    return seen


def _count_resets(db: Database, counts: Counter[str]) -> None:
    def reset(*_args: Any) -> None:
        counts["reset"] += 1
    sa.event.listen(db._engine.sync_engine.pool, "reset", reset)


def _observe(figures: Figures) -> Any:
    def observed(group: Group) -> None:
        if not group.ended:
            return
        figures.group_sizes.append(len(group.batches))
        for appended in group.appended_at:
            figures.ms["queued"].append(1000 * (group.began - appended))
            figures.ms["in group"].append(1000 * (group.ended - group.began))
    return observed


@dataclass(frozen=True)
class Load:
    """The appenders of one run: `processes` x `tasks`, `calls` each."""

    processes: int
    tasks: int
    calls: int
    pause_ms: float
    busy_ms: float


async def _busy(ms: float, stop: asyncio.Event) -> None:
    """The node's other work: the loop held `ms` at a time, then let go as long."""
    while not stop.is_set():
        until = time.perf_counter() + ms / 1000
        while time.perf_counter() < until:
            pass
        await asyncio.sleep(ms / 1000)


async def _node(url: str, node: int, lanes: int, load: Load) -> Figures:
    from server.storage import Database
    from signaling import events as ev
    from signaling.events import LogEvent

    db = await Database.connect(url)
    figures = Figures()
    _count_resets(db, figures.trips)
    if hasattr(db, "group_observer"):  # not in the baseline
        db.groups_in_flight = lanes
        db.group_observer = _observe(figures)
    db.append_observer = lambda seconds: figures.ms["append"].append(1000 * seconds)
    now = dt.datetime.now(dt.UTC)

    async def pause() -> None:
        await asyncio.sleep(chance.expovariate(1000 / load.pause_ms) if load.pause_ms else 0)

    async def step(kind: str, sid: str, **data: Any) -> None:
        await pause()
        call_id = f"c-{sid}" if kind == ev.QUEUED else None
        await db.append([LogEvent(type=kind, ts=now, session_id=sid, call_id=call_id,
                                  data=data)])

    async def worker(w: int) -> None:
        for i in range(load.calls):
            sid = f"n{node}-w{w}-{i}"
            who = f"specialist:a{w}"
            shared = f"shared-{(w + i) % SHARED_SESSIONS}"
            await step(ev.QUEUED, sid, queue="tax")
            await step(ev.OFFERED, sid, agent_id=f"a{w}", offer=1, queue="tax")
            await step(ev.CHAT, shared, text=sid)
            await pause()
            await db.append([
                LogEvent(type=ev.ANSWERED, ts=now, session_id=sid, data={"agent_id": f"a{w}"}),
                LogEvent(type=ev.PARTICIPANT_JOINED, ts=now, session_id=sid,
                         data={"participant_id": who, "role": "specialist",
                               "principal_id": f"a{w}", "name": "A"})])
            await pause()
            await db.append([
                LogEvent(type=ev.ENDED, ts=now, session_id=sid, data={"reason": "hangup"}),
                LogEvent(type=ev.PARTICIPANT_LEFT, ts=now, session_id=sid,
                         data={"participant_id": who, "reason": "hangup"})])

    chance = random.Random(node)
    stop = asyncio.Event()
    busy = asyncio.create_task(_busy(load.busy_ms, stop)) if load.busy_ms else None
    started = time.perf_counter()
    try:
        async with trips.observed(db, _count_trip(figures.trips)):
            await asyncio.gather(*(worker(w) for w in range(load.tasks)))
    finally:
        figures.seconds = time.perf_counter() - started
        stop.set()
        if busy is not None:
            await busy
        await db.close()
    return figures


def _run_node(url: str, node: int, lanes: int, load: Load, root: str | None) -> Figures:
    """In a process of its own; `root`: the checkout whose `server` appends (baseline)."""
    if root is not None:  # spawned: the parent's main module imported this tree's already
        sys.path.insert(0, root)
        for name in [m for m in sys.modules if m.split(".")[0] in ("server", "signaling")]:
            del sys.modules[name]
        import server

        if not server.__file__ or not server.__file__.startswith(root):
            raise RuntimeError(f"server imported from {server.__file__}, not from {root}")
    return asyncio.run(_node(url, node, lanes, load))


async def _sample_locks(dsn: str, name: str, stop: asyncio.Event) -> Counter[str]:
    """Samples of the database's backends: how many waited on a lock, how many sat idle
    in a transaction (waiting for their client's next statement)."""
    seen: Counter[str] = Counter()
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock,"
                " count(*) FILTER (WHERE state = 'idle in transaction') AS idle_tx,"
                " count(*) FILTER (WHERE state = 'active') AS active"
                " FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
            seen["samples"] += 1
            seen["with a lock wait"] += row["lock"] > 0
            seen["lock waiters"] += row["lock"]
            seen["idle in transaction"] += row["idle_tx"]
            seen["active"] += row["active"]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_S)
    finally:
        await conn.close()
    return seen


async def run_mode(url: str, dsn: str, name: str, lanes: int, load: Load,
                   root: str | None = None) -> tuple[Figures, Counter[str]]:
    """One mode: the nodes' figures together, and the lock samples."""
    await _shared_sessions(url)
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_locks(dsn, name, stop))
    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(load.processes, mp_context=spawn) as pool:
        runs = [loop.run_in_executor(pool, _run_node, url, node, lanes, load, root)
                for node in range(load.processes)]
        try:
            results = await asyncio.gather(*runs)
        finally:
            stop.set()
            locks = await sampler
    total = Figures()
    for figures in results:
        total.add(figures)
    return total, locks


async def _shared_sessions(url: str) -> None:
    from server.storage import Database
    from signaling import events as ev
    from signaling.events import LogEvent

    db = await Database.connect(url)
    try:
        async with db._write() as conn:
            await conn.execute(sa.text("DELETE FROM session_events"))
            await conn.execute(sa.text("DELETE FROM session_participants"))
            await conn.execute(sa.text("DELETE FROM sessions"))
        now = dt.datetime.now(dt.UTC)
        await db.append([LogEvent(type=ev.QUEUED, ts=now, session_id=f"shared-{k}",
                                  call_id=f"c-shared-{k}", data={"queue": "tax"})
                         for k in range(SHARED_SESSIONS)])
    finally:
        await db.close()


def row(mode: str, figures: Figures, locks: Counter[str]) -> tuple[Any, ...]:
    """One line of the table `bench.sessionlog --concurrent` prints."""
    groups = max(1, len(figures.group_sizes) or figures.trips["commit"])  # baseline: COMMITs
    trips = sum(figures.trips[k] for k in ("statement", "begin", "commit", "rollback"))
    samples = max(1, locks["samples"])

    def p(values: list[float], q: float) -> float | str:
        return round(percentile(values, q), 1) if values else "-"

    appends = len(figures.ms["append"])
    return (mode, appends, round(appends / figures.seconds),
            *(f"{p(figures.ms[kind], 50)} / {p(figures.ms[kind], 99)}"
              for kind in ("append", "queued", "in group")),
            f"{statistics.mean(figures.group_sizes):.1f} / {max(figures.group_sizes)}"
            if figures.group_sizes else f"{appends / groups:.1f} / -",
            f"{trips / groups:.1f} (+{figures.trips['reset'] / groups:.1f})",
            f"{100 * locks['with a lock wait'] / samples:.0f} % "
            f"({locks['lock waiters'] / samples:.2f})",
            f"{locks['idle in transaction'] / samples:.2f} / {locks['active'] / samples:.2f}")


HEADERS = ["groups in flight", "appends", "appends/s", "append p50 / p99 ms",
           "queued p50 / p99 ms", "in group p50 / p99 ms", "group size mean / max",
           "round trips a group (+ pool reset)", "samples with a lock wait (mean waiters)",
           "backends idle in tx / active"]
