"""The switchboard in process: CPU per step, beside the floor of the same work done bare.

Memory backends, a temporary SQLite session log, no sockets. Two figures:
- relay: one `rtc.candidate` through `Switchboard.handle` (membership check, send) against
  the floor, the relayed frame encoded and handed to the bus directly;
- call cycle: request, offer, accept, hang-up, wrap-up through `handle` (CPU and wall: the
  wall time is mostly the session log's three appends).

The session log is a temporary SQLite file, the database at `--database URL`, or with
`--pg` a throw-away database on the local PostgreSQL (`bench.pg`, dropped after).

    python -m bench.switchboard [--relays 20000] [--cycles 100] [--database URL | --pg]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.common import table
from bench.pg import create_database, drop_database
from server.storage.db import Database
from signaling import messages as m
from signaling.identity import Identity, Role
from signaling.link import SingleNode
from signaling.memory import memory_backends
from signaling.model import QueueConfig
from signaling.queue_status import QueueStatus
from signaling.services import Services
from signaling.switchboard import Switchboard

QUEUES = [QueueConfig(id="tax", name="tax")]
KIOSK = Identity(role=Role.TERMINAL, id="T1", name="kiosk",
                 site=m.SiteInfo(id="p", name="park", kind="park"))
ALICE = Identity(role=Role.SPECIALIST, id="alice", name="Alice", skills={"tax": 1})
CANDIDATE = m.IceCandidate(candidate="candidate:1 1 udp 2122260223 192.0.2.2 50000 typ host",
                           sdpMid="0", sdpMLineIndex=0)


class Sink:
    def send(self, payload: bytes) -> None:
        del payload

    def close(self, code: int, reason: str) -> None:
        del code, reason


async def run(relays: int, cycles: int, database: str | None, pg: bool) -> str:
    """The table, on the session log `database` (a temporary SQLite file when None) or,
    with `pg`, a throw-away PostgreSQL database."""
    if not pg:
        with tempfile.TemporaryDirectory() as work:
            return await _run(relays, cycles,
                              database or f"sqlite+aiosqlite:///{Path(work) / 'bench.db'}")
    name, url = await create_database("vwin_bench_board", 8)
    try:
        return await _run(relays, cycles, url)
    finally:
        await drop_database(name)


async def _run(relays: int, cycles: int, url: str) -> str:
    db = await Database.connect(url)
    await db.upgrade()
    local = memory_backends(QUEUES)
    link = SingleNode(local.router, local.bus)
    queues = {q.id: q for q in QUEUES}
    status = QueueStatus(queues, local.router, local.bus, time.time, link)
    board = Switchboard(Services(queues=queues, router=local.router, bus=local.bus,
                                 scheduler=local.scheduler, presences=local.presences,
                                 session_log=db, clock=time.time, link=link,
                                 status=status))
    await board.connect(KIOSK, Sink(), None)
    await board.connect(ALICE, Sink(), None)
    await board.handle(ALICE, m.AgentStatus(status="available"))
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(cycles):
        await board.handle(KIOSK, m.CallRequest(queue="tax"))
        call_id = (await local.router.calls_of_terminal("T1"))[0].id
        await board.handle(ALICE, m.CallAccept(call_id=call_id))
        await board.handle(KIOSK, m.CallHangup(call_id=call_id))
        await board.handle(ALICE, m.AgentWrapupDone())
    cycle_cpu = (time.process_time() - cpu) / cycles * 1e3
    cycle_wall = (time.perf_counter() - wall) / cycles * 1e3
    await board.handle(KIOSK, m.CallRequest(queue="tax"))
    call_id = (await local.router.calls_of_terminal("T1"))[0].id
    await board.handle(ALICE, m.CallAccept(call_id=call_id))
    msg = m.RtcCandidate(call_id=call_id, to=ALICE.principal, candidate=CANDIDATE)
    cpu = time.process_time()
    for _ in range(relays):
        await board.handle(KIOSK, msg)
    relay_cpu = (time.process_time() - cpu) / relays * 1e6
    cpu = time.process_time()
    for _ in range(relays):
        await local.bus.send(ALICE.principal, m.encode(m.RtcCandidateRelay(
            call_id=call_id, to=ALICE.principal, sender=KIOSK.principal,
            candidate=CANDIDATE)))
    floor_cpu = (time.process_time() - cpu) / relays * 1e6
    await status.close()
    await local.scheduler.close()
    await db.close()
    return table(f"Switchboard in process (memory backends, {db.dialect} log), "
                 f"load average {os.getloadavg()[0]:.1f}",
                 ["step", "count", "CPU", "floor (bare bus.send)", "wall"],
                 [["relay rtc.candidate", relays, f"{relay_cpu:.1f} µs", f"{floor_cpu:.1f} µs",
                   ""],
                  ["call cycle", cycles, f"{cycle_cpu:.2f} ms", "", f"{cycle_wall:.2f} ms"]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--relays", type=int, default=20_000)
    parser.add_argument("--cycles", type=int, default=100)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database", help="session log URL (default: a temporary SQLite file)")
    where.add_argument("--pg", action="store_true",
                       help="a throw-away database on the local PostgreSQL")
    args = parser.parse_args()
    print(asyncio.run(run(args.relays, args.cycles, args.database, args.pg)))


if __name__ == "__main__":
    main()
