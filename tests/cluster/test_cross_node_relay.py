"""The `rtc.*` relay across nodes follows membership changes made on another node.

Each node relays from its own copy of connected calls (`server/cluster/callcache.py`);
a participant who left on node b must be refused on node a as soon as anyone has
heard that they left, and one who joined on node b must be let through on node a.
"""

from __future__ import annotations

from typing import Any

from tests.cluster.procs import Cluster
from tests.helpers import Peer


async def relay(sender: Peer, call_id: str, to: Peer, n: int) -> None:
    """`sender`'s candidate number n reaches `to`."""
    await sender.send(_candidate(call_id, to.me, n))
    got = await to.recv("rtc.candidate", **{"from": sender.me})
    assert got["candidate"]["candidate"] == f"candidate:{n}"


async def refused(sender: Peer, call_id: str, to: str, n: int) -> None:
    await sender.send(_candidate(call_id, to, n))
    error = await sender.error("not_in_call")
    assert error["refused"] == "rtc.candidate" and error["call_id"] == call_id


def _candidate(call_id: str, to: str, n: int) -> dict[str, Any]:
    return {"type": "rtc.candidate", "call_id": call_id, "to": to,
            "candidate": {"candidate": f"candidate:{n}", "sdpMid": "0", "sdpMLineIndex": 0}}


async def test_relay_follows_joins_and_departures_made_on_another_node(
        cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    kiosk = await cluster.connect(a, await cluster.terminal("T1"))
    li = await cluster.connect(b, await cluster.specialist("li", {"tax": 1}))
    wang = await cluster.ready(b, await cluster.specialist("wang", {"registration": 1}))
    # Queued (and logged) before li is available: the dispatch that li's status change
    # runs on node b cannot race the request on node a.
    await kiosk.send({"type": "call.request", "queue": "tax"})
    await kiosk.recv("call.queued")
    await li.send({"type": "agent.status", "status": "available"})
    offered = await li.recv("call.offered")
    call_id = offered["call_id"]
    await li.send({"type": "call.accept", "call_id": call_id})
    await kiosk.recv("call.connected", call_id=call_id)
    await relay(kiosk, call_id, li, 1)  # node a now holds the call: {T1, li}
    await relay(li, call_id, kiosk, 2)

    await li.send({"type": "call.invite", "call_id": call_id, "queue": "registration"})
    invitation = await wang.recv("call.offered")
    await wang.send({"type": "call.accept", "call_id": invitation["call_id"]})
    await kiosk.recv("participant.joined")
    await relay(kiosk, call_id, wang, 3)  # joined on node b: let through on node a
    await relay(wang, call_id, kiosk, 4)

    await li.send({"type": "call.hangup", "call_id": call_id})
    assert (await li.recv("call.ended"))["reason"] == "left"
    left = await kiosk.recv("participant.left")
    assert left["participant"] == li.me
    await refused(kiosk, call_id, li.me, 5)  # left on node b: refused on node a
    await refused(li, call_id, kiosk.me, 6)
    await relay(kiosk, call_id, wang, 7)

    await wang.send({"type": "call.hangup", "call_id": call_id})
    await kiosk.recv("call.ended", call_id=call_id)
    await refused(kiosk, call_id, wang.me, 8)  # ended on node b: refused on node a
    await refused(wang, call_id, kiosk.me, 9)
    assert not [m for m in li.inbox + wang.inbox
                if m["type"] == "rtc.candidate" and m["from"] == kiosk.me]
