"""The concurrency test across two real `vwin serve` nodes sharing Redis and PostgreSQL.

Terminals and specialists are spread over both nodes, so most offers, answers
and endings cross from one process to the other. Specialists randomly accept,
decline or let offers time out; terminals randomly cancel. Afterwards: no call
rang two specialists at once, no specialist rang for two calls at once, no call
was answered twice, every call ended, and the shared session log agrees.
The client behaviour (`Ledger`, `specialist_loop`, `terminal_run`) is the
single-node test's, so both tests hold the service to the same rules.

Double assignment is judged on Redis itself: a script snapshots every live call
and specialist atomically, many times a second, during the whole run. The
consoles' view cannot judge it across nodes: a new `call.offered` can overtake
the `call.withdrawn` of the previous offer of that specialist or call (the node
that freed them writes the session log before it publishes, and another node
rings them meanwhile), so the single-node ledger's order checks are only
counted here (`Ledger(strict_order=False)`); what is asserted is that every offer a
console got is withdrawn, declined or accepted in the end: none is left ringing.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from server.storage import Database
from signaling.model import QueueConfig
from tests.cluster.procs import Cluster
from tests.test_concurrency import (
    Ledger,
    session_details,
    specialist_loop,
    terminal_run,
    timeline,
)

TERMINALS = 150
SPECIALISTS = 16
RING_S = 1.0  # short, so ignored offers time out often; long enough for a busy machine
RUN_S = 75.0  # every terminal gives up within ~8 s; the rest is slack for a slow machine
LOG_WAIT_S = 20.0
QUEUE_IDS = ("tax", "registration")
SNAPSHOT_S = 0.02

# Every ringing call must name a specialist whose hash names it back and who is ringing,
# and no specialist may be named by two ringing calls: returns what breaks that.
CHECK = """
local P = ARGV[1]
local broken, ringing = {}, {}
for _, c in ipairs(redis.call("KEYS", P .. ":c:*")) do
  local state, aid = unpack(redis.call("HMGET", c, "state", "ring"))
  if state == "ringing" then
    local cid = string.sub(c, #P + 4)
    if ringing[aid] then
      broken[#broken + 1] = aid .. " rings " .. ringing[aid] .. " and " .. cid
    end
    ringing[aid] = cid
    local a = P .. ":a:" .. aid
    local acall, astate = unpack(redis.call("HMGET", a, "call", "state"))
    if acall ~= cid or astate ~= "ringing" then
      broken[#broken + 1] = cid .. " rings " .. tostring(aid) .. " who has " .. tostring(acall)
        .. " in state " .. tostring(astate)
    end
  end
end
return broken
"""


class RoutingCluster(Cluster):
    """Nodes without recording: its aiortc peers would cost more CPU than the routing tested."""

    def config(self, name: str, port: int) -> Path:
        path = super().config(name, port)
        path.write_text(path.read_text() + "\n[recording]\nenabled = false\n"
                        # every client connects from 127.0.0.1: lift the per-address caps
                        "\n[limits]\nws_per_address = 1000\nunauthenticated_per_address = 1000\n")
        return path


async def watch_redis(redis: Redis, prefix: str, broken: list[str],
                      stop: asyncio.Event) -> int:
    """Check the assignment invariants atomically until `stop`; returns the snapshot count."""
    script = redis.register_script(CHECK)
    snapshots = 0
    while not stop.is_set():
        broken += await script(keys=[], args=[prefix])
        snapshots += 1
        await asyncio.sleep(SNAPSHOT_S)
    return snapshots


async def settled_log(db: Database, calls: int) -> dict[str, str]:
    """Session states by call, once every session of the run is written and closed."""
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        sessions, cursor = await db.list_sessions(limit=calls + 50)
        states = {s.call_id: s.state for s in sessions}
        done = cursor is None and len(states) == calls and all(
            state in ("ended", "abandoned") for state in states.values())
        if done or time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.2)


async def test_no_call_lost_or_double_assigned_across_nodes(
        tmp_path: Path, pg_url: str, key_prefix: str, redis: Redis) -> None:
    rng = random.Random(20261128)
    cluster = RoutingCluster(tmp_path, pg_url, key_prefix, ring_s=RING_S)
    try:
        nodes = await cluster.start("a", "b")
        ledger = Ledger(strict_order=False)
        broken: list[str] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_redis(redis, key_prefix, broken, stop))
        specialists = []
        for i in range(SPECIALISTS):
            skills = rng.choice([{"tax": 1}, {"registration": 1}, {"tax": 2, "registration": 1}])
            token = await cluster.specialist(f"s{i}", skills)
            specialists.append((f"s{i}", await cluster.connect(nodes[i % 2], token)))
        loops = [asyncio.create_task(specialist_loop(p, n, ledger, random.Random(rng.random())))
                 for n, p in specialists]
        terminals = [await cluster.connect(nodes[i % 2], await cluster.terminal(f"T{i}"))
                     for i in range(TERMINALS)]
        await asyncio.wait_for(asyncio.gather(
            *(terminal_run(t, ledger, random.Random(rng.random())) for t in terminals)), RUN_S)
        await ledger.settle()
        for _, peer in specialists:
            await peer.close()
        await asyncio.gather(*loops)
        stop.set()
        snapshots = await watcher

        assert broken == [] and snapshots > 100
        print(f"{snapshots} Redis snapshots; {ledger.offers} offers, {ledger.overtaken} "
              f"overtook a withdrawal; answers that crossed a withdrawal {dict(ledger.refused)}; "
              f"endings {Counter(ledger.outcome.values())}")
        db = await cluster.provision()
        states = await settled_log(db, TERMINALS)
        details = await session_details(db, TERMINALS)
        ledger.check_end(TERMINALS, {d.call_id: timeline(d) for d in details})
        assert len(states) == TERMINALS
        for call_id, reason in ledger.outcome.items():
            expected = "ended" if reason == "hangup" else "abandoned"
            assert states[call_id] == expected, (call_id, reason, states[call_id])
        router = RedisRouter(redis, key_prefix, [QueueConfig(id=q, name=q) for q in QUEUE_IDS])
        for queue in QUEUE_IDS:
            assert await router.waiting(queue) == []
    finally:
        await cluster.close()
