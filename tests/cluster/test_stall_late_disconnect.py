"""A node stalled long enough for its kiosk to be taken over, released after its grace and
connected anew elsewhere: the stalled node, woken up, closes the kiosk's old socket and
carries out its disconnect late. That must not touch the kiosk's new presence.

The bench day's lost calls after a node's stalls: presence epochs were counted per
presence, so the new presence (made after the old one was dropped) had epoch 1 again, the
old socket's late disconnect (epoch 1) matched it, and its grace dropped the presence of a
kiosk still connected. Messages from other nodes then found no owner: the accept that
numbered the kiosk's `call.connected` ran on the specialist's node, and the kiosk never
heard it (it sat in its queue screen).
"""

from __future__ import annotations

import asyncio
import signal

import aiohttp
from redis.asyncio import Redis

from server.cluster import keys
from tests.cluster.procs import Cluster
from tests.helpers import WAIT_S, eventually


async def closed(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Until the server closes the socket."""
    async with asyncio.timeout(WAIT_S):
        while (await ws.receive()).type == aiohttp.WSMsgType.TEXT:
            pass


async def test_a_late_disconnect_from_a_stalled_node_leaves_the_new_presence_alone(
        cluster: Cluster, redis: Redis) -> None:
    a, b = await cluster.start("a", "b")
    token = await cluster.terminal("K1")
    old = await cluster.connect(b, token)
    await old.send({"type": "ping"})
    await old.recv("pong")  # served: b has carried its connect out to the end
    presence = keys.presence(cluster.prefix, "terminal:K1")
    control = keys.presence(cluster.prefix, "terminal:C1")

    async def gone(key: str) -> bool:
        return not await redis.exists(key)

    b.proc.send_signal(signal.SIGSTOP)
    try:  # a takes b over; the kiosk's grace runs out there (it did not come back in time)
        await eventually(lambda: gone(presence), timeout=4 * WAIT_S)
        # Its socket silent, the kiosk connects through the balancer to a: a new presence.
        kiosk = await cluster.connect(a, token, resume=old.welcome["resume"])
        assert kiosk.welcome["resumed"] is False
        control_token = await cluster.terminal("C1")
        watch = await cluster.connect(a, control_token)
    finally:
        b.proc.send_signal(signal.SIGCONT)
    await closed(old.ws)  # b woke up, fenced: the old socket closed, its disconnect under way

    # Two graces' length later (another kiosk leaves a twice: its presence's grace runs
    # out), past b's copy of where K1 is (`OWNER_CACHE_S`), and any grace timer of K1's
    # gone, whatever it did.
    await watch.close()
    await eventually(lambda: gone(control), timeout=4 * WAIT_S)
    await (await cluster.connect(a, control_token)).close()
    await eventually(lambda: gone(control), timeout=4 * WAIT_S)

    async def no_grace_pending() -> bool:
        grace = keys.k(cluster.prefix, "t")
        claims = keys.k(cluster.prefix, "tl")
        return (await redis.zscore(grace, "grace:terminal:K1") is None
                and not [c for c in await redis.zrange(claims, 0, -1)
                         if str(c).startswith("grace:terminal:K1")])
    await eventually(no_grace_pending, timeout=4 * WAIT_S)

    await cluster.wait_health(b, "ok")  # b joined again; its specialist answers there
    desk = await cluster.ready(b, await cluster.specialist("alice", {"tax": 1}))
    await kiosk.send({"type": "call.request", "queue": "tax"})
    queued = await kiosk.recv("call.queued")
    await desk.recv("call.offered", call_id=queued["call_id"])
    await desk.send({"type": "call.accept", "call_id": queued["call_id"]})
    await desk.recv("call.connected", call_id=queued["call_id"])
    await kiosk.recv("call.connected", call_id=queued["call_id"])
