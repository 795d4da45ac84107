"""Two real `vwin serve` processes behind no balancer: one service across nodes."""

from __future__ import annotations

from tests.cluster.procs import Cluster
from tests.rtc_peers import RtcClient, use_loopback_when_alone

VIDEO_FRAMES = 10
AUDIO_FRAMES = 20


async def test_terminal_on_a_specialist_on_b_talk_with_media(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    use_loopback_when_alone()
    token = await cluster.specialist("li", {"tax": 1})
    specialist = await RtcClient.open(cluster.http, token, url=b.url + "/ws")
    terminal = await RtcClient.open(cluster.http, await cluster.terminal("T1"), url=a.url + "/ws")
    try:
        await specialist.available()
        await terminal.send({"type": "call.request", "queue": "tax"})
        queued = await terminal.recv("call.queued")
        assert queued["position"] == 1
        offered = await specialist.recv("call.offered", call_id=queued["call_id"])
        assert offered["terminal"]["id"] == "T1"
        await specialist.send({"type": "call.accept", "call_id": offered["call_id"]})
        on_terminal = await terminal.recv("call.connected")
        on_specialist = await specialist.recv("call.connected")
        assert on_terminal["session_id"] == on_specialist["session_id"]

        call_id = on_specialist["call_id"]
        await specialist.call(call_id, terminal.me)
        for me, other in ((specialist, terminal), (terminal, specialist)):
            link = await me.frames(other.me, video=VIDEO_FRAMES, audio=AUDIO_FRAMES)
            assert link.pc.connectionState == "connected"
            assert link.received["video"] >= VIDEO_FRAMES

        await terminal.send({"type": "chat.send", "call_id": call_id, "text": "你好"})
        assert (await specialist.recv("chat.message"))["text"] == "你好"
        await specialist.send({"type": "call.hangup", "call_id": call_id})
        ended = await terminal.recv("call.ended", call_id=call_id)
        assert ended["reason"] == "hangup" and ended["by"] == specialist.me
    finally:
        for client in (terminal, specialist):
            await client.close()

    db = await cluster.provision()
    detail = await db.get_session(on_terminal["session_id"])
    assert detail is not None
    types = [e.type for e in detail.events]
    assert types[:3] == ["queued", "offered", "answered"] and "ended" in types


async def test_queue_positions_follow_changes_made_on_another_node(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    first = await cluster.connect(a, await cluster.terminal("T1"))
    second = await cluster.connect(b, await cluster.terminal("T2"))
    specialist = await cluster.connect(a, await cluster.specialist("li", {"tax": 1}))
    await first.send({"type": "call.request", "queue": "tax"})
    q1 = await first.recv("call.queued")
    await second.send({"type": "call.request", "queue": "tax"})
    assert (await second.recv("call.queued"))["position"] == 2

    await first.send({"type": "call.cancel", "call_id": q1["call_id"]})
    await first.recv("call.ended", call_id=q1["call_id"])
    moved = await second.recv("call.position")
    assert moved["position"] == 1
    await specialist.send({"type": "agent.status", "status": "available"})
    offered = await specialist.recv("call.offered")
    assert offered["terminal"]["id"] == "T2"
    status = await second.recv("queue.status")
    assert {q["id"] for q in status["queues"]} == {"tax", "registration"}
