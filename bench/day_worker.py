"""One load process of the bench day: its kiosks and desks, its share of the visits (or
the latency probe's own few, bench.day_plan.PROBE_*); its event loop's lag sampled into
its ledger every 0.1 s (`lag` rows, bench.day_latency)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from bench.common import raise_fd_limit
from bench.day_desk import Desk
from bench.day_line import Line
from bench.day_load import Kiosk, Ledger, Work
from bench.day_plan import Clock, Visit
from bench.day_visits import arrival
from server.metrics import watch_loop_lag
from tests.rtc_peers import use_loopback_when_alone

OPENING = 100  # sockets opened at once by one process
STOP_S = 120.0  # real seconds after closing within which every desk has stopped, or the day
# fails naming where each still waits (a desk waiting on its own line hung a day for good)


def run(work: Work, pipe: Connection) -> None:
    """Process entry: connect everyone, say ready, play the day from the `t0` sent back."""
    raise_fd_limit()
    if work.nice:
        with contextlib.suppress(PermissionError):  # below 0 only as root
            os.nice(work.nice)
    use_loopback_when_alone()
    random.seed(work.seed)
    try:
        asyncio.run(_main(work, pipe))
    except BaseException:
        pipe.send(traceback.format_exc())
        raise


async def _open_all(lines: list[Line]) -> None:
    gate = asyncio.Semaphore(OPENING)

    async def one(line: Line) -> None:
        async with gate:
            await line.open()

    await asyncio.gather(*(one(line) for line in lines))


async def _ended(tasks: list[asyncio.Task[None]], by: float, what: str) -> None:
    """Every task done by `by` (wall clock), or RuntimeError with where each still waits."""
    if not tasks:
        return
    _, stuck = await asyncio.wait(tasks, timeout=max(0.0, by - time.time()))
    if stuck:
        where = "\n".join(awaiting(task) for task in stuck)
        for task in stuck:
            task.cancel()
        raise RuntimeError(f"{len(stuck)} of {len(tasks)} {what} still running "
                           f"{STOP_S:.0f} s after closing:\n{where}")
    await asyncio.gather(*tasks, return_exceptions=True)


def awaiting(task: asyncio.Task[Any]) -> str:
    """Where a task waits: each coroutine in its await chain, outermost first."""
    frames = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return f"{task.get_name()}: " + " -> ".join(frames)


async def _main(work: Work, pipe: Connection) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as http:
        ledger = Ledger(work.ledger, work.name)
        n = len(work.urls)
        kiosks = [Kiosk(tid, Line(http, work.urls, token, i % n), ledger)
                  for i, (tid, token) in enumerate(work.terminals)]
        desks = [Desk(sid, dept, Line(http, work.urls, token, i % n), ledger, http,
                      work.signers, work.closure)
                 for i, (sid, token, dept) in enumerate(work.specialists)]
        parties: list[Kiosk | Desk] = [*kiosks, *desks]
        for party in parties:
            party.media_share = work.media_share
        await _open_all([k.line for k in kiosks] + [d.line for d in desks])
        lag = asyncio.create_task(watch_loop_lag(
            lambda lag_s: ledger.add("lag", process=work.name, ms=lag_s * 1000)))
        loop = asyncio.get_running_loop()
        pipe.send("ready")
        t0 = float(await loop.run_in_executor(None, pipe.recv))
        clock = Clock(t0, work.speed, work.hours)
        for party in parties:
            party.clock = clock
        closing = clock.closing
        staff = [asyncio.create_task(d.run(closing), name=f"desk {d.id}") for d in desks]
        visits: list[asyncio.Task[None]] = []
        def when(v: Visit) -> float:  # a booked visitor comes by the slot, not the profile
            return arrival(v, work.slot, *work.window) if v.code else clock.at(v.at_h)

        for at, visit in sorted(((when(v), v) for v in work.visits), key=lambda p: p[0]):
            await asyncio.sleep(max(0.0, at - time.time()))
            free = [k for k in kiosks if not k.lock.locked()]
            if not free:
                ledger.add("no_free_kiosk", at_h=visit.at_h, appointment=visit.code)
                continue
            visits.append(asyncio.create_task(random.choice(free).visit(visit)))
        if visits:
            _, late = await asyncio.wait(visits, timeout=max(0.0, closing - time.time()))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await _ended(staff, closing + STOP_S, "desks")
        lag.cancel()
        await asyncio.gather(lag, return_exceptions=True)
        for party in parties:
            ledger.add("line", who=party.id, reconnects=party.line.reconnects)
            await party.line.close()
        ledger.save()
    pipe.send("done")
