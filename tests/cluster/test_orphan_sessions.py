"""A node killed between logging a caller's request and queueing its call: the session
would stay `queued` in the log for ever (the routing state never had the call, so nothing
ends it). The node settles such sessions of its own when it starts again."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from signaling import events as ev
from signaling.backend import Ending
from tests.cluster.procs import Cluster
from tests.cluster.test_failover import session_state


async def test_a_session_whose_call_never_reached_routing_ends_when_its_node_restarts(
        cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    await cluster.connect(b, await cluster.specialist("li", {"tax": 1}))  # signed in, away
    terminal = await cluster.connect(a, await cluster.terminal("T1"))
    await terminal.send({"type": "call.request", "queue": "tax"})
    live = await terminal.recv("call.queued")  # a call of node a that routing knows
    db = await cluster.provision()
    now = dt.datetime.now(dt.UTC)
    await db.append([ev.log_event(  # what node a logged just before it was killed
        ev.Queued(queue="tax", terminal_id="T2", node_id="a"), now,
        session_id=str(uuid.uuid4()), call_id="c_never_queued")])
    cluster.kill(a)
    await cluster.start("a")
    assert await session_state(cluster, "c_never_queued", "interrupted") == "interrupted"
    assert await session_state(cluster, live["call_id"], "queued") == "queued"


async def test_a_cancel_its_node_never_logged_is_closed_abandoned_when_it_restarts(
        cluster: Cluster, redis: Redis) -> None:
    """The short bench day's kiosk that cancelled 0.14 s before its node was killed: the
    cancel's routing transaction ran, its `abandoned` was never logged. The restarted node
    closes the session as routing kept the end (`abandoned`, `cancelled`), as the kiosk saw
    it, not `interrupted`."""
    a, b = await cluster.start("a", "b")
    await cluster.connect(b, await cluster.specialist("li", {"tax": 1}))  # signed in, away
    terminal = await cluster.connect(a, await cluster.terminal("T1"))
    await terminal.send({"type": "call.request", "queue": "tax"})
    call_id = (await terminal.recv("call.queued"))["call_id"]
    now = time.time()  # node a's cancel, in routing only: a is killed before its append
    router = RedisRouter(redis, cluster.prefix, [])
    assert await router.remove(call_id, now, Ending(at=now, reason="cancelled")) is not None
    cluster.kill(a)
    await cluster.start("a")
    assert await session_state(cluster, call_id, "abandoned") == "abandoned"
    db = await cluster.provision()
    (row,), _ = await db.list_sessions(terminal="T1")
    assert (row.end_reason, row.answered_at) == ("cancelled", None)
