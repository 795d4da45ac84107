"""A node that only stalled (SIGSTOP past the heartbeat's TTL) is taken for dead, and fenced.

Woken up, it must not act for the principals the survivor settled meanwhile, whatever
it missed of the takeover: a request it took from a kiosk whose presence the survivor
had already released would be a call nobody settles when that socket drops (the bench
day's lost calls at a node's stall).
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aiohttp
from redis.asyncio import Redis

from server.cluster import keys
from tests.cluster.procs import Cluster
from tests.helpers import WAIT_S, eventually


async def frames_until_closed(ws: aiohttp.ClientWebSocketResponse) -> tuple[list[str], int | None]:
    """The types of the messages received until the server closed the socket, and its code."""
    seen: list[str] = []
    async with asyncio.timeout(WAIT_S):
        while True:
            frame = await ws.receive()
            if frame.type != aiohttp.WSMsgType.TEXT:
                return seen, ws.close_code
            seen.append(str(frame.json()["type"]))


async def test_a_stalled_node_woken_up_serves_nobody_it_was_relieved_of(
        cluster: Cluster, redis: Redis) -> None:
    a, b = await cluster.start("a", "b")
    desk = await cluster.ready(a, await cluster.specialist("alice", {"tax": 1}))
    kiosk = await cluster.connect(b, await cluster.terminal("T1"))
    presence = keys.k(cluster.prefix, "p", "terminal:T1")
    stalled = str(await redis.hget(presence, "node"))
    registry = keys.nodes(cluster.prefix)

    b.proc.send_signal(signal.SIGSTOP)
    try:
        async def taken_over() -> bool:  # a settled b's principals and unregistered it
            return not await redis.hexists(registry, stalled)
        await eventually(taken_over)
        # What b's heartbeat does when its reply is lost (the beat timed out after Redis
        # ran it): registered again, b cannot tell from its registration it was taken over.
        await redis.hset(registry, stalled, "b")

        async def released() -> bool:  # the kiosk's resume grace ran out on a
            return not await redis.exists(presence)
        await eventually(released)
        await kiosk.send({"type": "call.request", "queue": "tax"})
    finally:
        b.proc.send_signal(signal.SIGCONT)

    seen, code = await frames_until_closed(kiosk.ws)
    assert "call.queued" not in seen and code in (1001, keys.DRAIN_CLOSE_CODE), (seen, code)
    db = await cluster.provision()
    sessions, _ = await db.list_sessions(limit=10)
    assert [s.terminal_id for s in sessions] == [], "nothing was queued from the stalled node"
    assert desk.inbox == [] or all(m["type"] != "call.offered" for m in desk.inbox)

    # Once the takeover is over and its connections are closed, b joins again and serves.
    await cluster.wait_health(b, "ok")
    again = await cluster.connect(b, await cluster.terminal("T2"))
    await again.send({"type": "call.request", "queue": "tax"})
    queued: dict[str, Any] = await again.recv("call.queued")
    offered = await desk.recv("call.offered")
    assert offered["call_id"] == queued["call_id"]
