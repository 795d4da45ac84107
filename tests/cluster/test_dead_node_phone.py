"""A phone attached to a node that is killed and never comes back: the survivor settles it
with its call, so its grace's end lets go of the call it took over. Until then the
survivor named the phone without its call (a visitor's only one), the grace let go of
nothing, and the call waited for a phone for ever (CI's short faulted day,
`c_9a81c3dd48e7a7f3`: answered for nobody, requeued, still queued at the close). Real
`vwin serve` nodes, Redis and PostgreSQL."""

from __future__ import annotations

from server.cluster import keys
from tests.cluster.procs import Cluster
from tests.cluster.test_failover import queued, session_state

TAKEOVER_S = keys.HEARTBEAT_TTL_S * 3 + 30.0  # the heartbeat lapses, then the grace runs


async def test_a_dead_nodes_phone_that_never_returns_gives_its_call_up(
        cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    await cluster.connect(b, await cluster.specialist("away", {"tax": 1}))  # never available
    kiosk = await cluster.connect(b, await cluster.terminal("T1"))
    call_id = (await queued(kiosk, "tax"))["call_id"]
    await kiosk.send({"type": "call.handoff", "call_id": call_id})
    ready = await kiosk.recv("call.handoff_ready", call_id=call_id)
    phone = await cluster.connect(a, str(ready["url"]).removeprefix("/m/"))
    await phone.recv("call.queued", call_id=call_id)
    await kiosk.recv("call.handed_off", call_id=call_id)

    cluster.kill(a)  # the phone's node: the phone never says hello again

    assert await session_state(cluster, call_id, "abandoned",
                               timeout=TAKEOVER_S) == "abandoned"
