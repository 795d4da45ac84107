"""A whole call through the real server: queue, offer, accept, relay, chat, hangup, log."""

from __future__ import annotations

from typing import Any

from tests.helpers import add_manager, add_specialist, add_terminal, connect, specialist_ready


async def test_call_lifecycle(app_client: Any) -> None:
    app = app_client.server.app
    alice = await specialist_ready(app_client, await add_specialist(app, "alice", {"tax": 1}))
    kiosk = await connect(app_client, await add_terminal(app, "T1"))
    assert kiosk.welcome["role"] == "terminal" and kiosk.welcome["id"] == "T1"

    await kiosk.send({"type": "call.request", "queue": "tax",
                      "enterprise": {"name": "Jiading Bakery", "uscc": "91310115591693856A"}})
    queued = await kiosk.recv("call.queued")
    assert queued["position"] == 1
    offered = await alice.recv("call.offered")
    assert offered["call_id"] == queued["call_id"]
    assert offered["terminal"]["site"]["id"] == "park1"
    assert offered["enterprise"]["uscc"] == "91310115591693856A"
    await alice.recv("agent.status", status="ringing")

    await alice.send({"type": "call.accept", "call_id": offered["call_id"]})
    c1 = await kiosk.recv("call.connected")
    c2 = await alice.recv("call.connected")
    assert c1["session_id"] == c2["session_id"]
    assert {p["role"] for p in c1["participants"]} == {"terminal", "specialist"}

    await alice.send({"type": "rtc.description", "call_id": c2["call_id"], "to": c1["you"],
                      "description": {"type": "offer", "sdp": "v=0"}})
    relayed = await kiosk.recv("rtc.description")
    assert relayed["from"] == c2["you"] and relayed["description"]["sdp"] == "v=0"

    await kiosk.send({"type": "chat.send", "call_id": c1["call_id"], "text": "你好"})
    assert (await alice.recv("chat.message"))["text"] == "你好"

    await kiosk.send({"type": "call.hangup", "call_id": c1["call_id"]})
    ended = await alice.recv("call.ended")
    assert ended["reason"] == "hangup" and ended["by"] == c1["you"]
    await alice.recv("agent.status", status="wrap_up")

    manager = await add_manager(app)
    resp = await app_client.get("/api/sessions", headers={"Authorization": f"Bearer {manager}"})
    assert resp.status == 200
    sessions = (await resp.json())["sessions"]
    assert [s["id"] for s in sessions] == [c1["session_id"]]
    detail = await (await app_client.get(f"/api/sessions/{c1['session_id']}",
                                         headers={"Authorization": f"Bearer {manager}"})).json()
    types = [e["type"] for e in detail["events"]]
    assert types[:3] == ["queued", "offered", "answered"]
    assert "ended" in types and "chat" in types
    assert detail["session"]["specialist_id"] == "alice"
