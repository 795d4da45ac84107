"""The phone hand-off across two real `vwin serve` processes: the kiosk on one node, the
phone on the other; the ticket (in PostgreSQL) opens there once, and the call's messages
reach the phone on its node."""

from __future__ import annotations

from tests.cluster.procs import Cluster
from tests.helpers import Peer


async def test_a_ticket_from_node_a_opens_once_on_node_b(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    kiosk = await cluster.connect(a, await cluster.terminal("T1"))
    specialist = await cluster.connect(a, await cluster.specialist("li", {"tax": 1}))
    await kiosk.send({"type": "call.request", "queue": "tax"})
    call_id = (await kiosk.recv("call.queued"))["call_id"]
    await kiosk.send({"type": "call.handoff", "call_id": call_id})
    ticket = (await kiosk.recv("call.handoff_ready"))["url"].removeprefix("/m/")
    async with cluster.http.get(f"{b.url}/m/{ticket}/qr.svg") as qr:
        assert qr.status == 200 and qr.content_type == "image/svg+xml"

    phone = await cluster.connect(b, ticket)
    assert phone.welcome["role"] == "visitor"
    assert (await phone.recv("call.queued"))["call_id"] == call_id
    await kiosk.recv("call.handed_off", call_id=call_id)
    again = Peer(await cluster.http.ws_connect(a.url + "/ws"))
    await again.send({"type": "hello", "token": ticket})
    assert (await again.error())["code"] == "ticket_used"

    await specialist.send({"type": "agent.status", "status": "available"})
    await specialist.recv("call.offered", call_id=call_id)
    await specialist.send({"type": "call.accept", "call_id": call_id})
    connected = await phone.recv("call.connected", call_id=call_id)
    assert connected["you"] == phone.me
    await specialist.send({"type": "rtc.description", "call_id": call_id, "to": phone.me,
                           "description": {"type": "offer", "sdp": "v=0"}})
    assert (await phone.recv("rtc.description", call_id=call_id))["from"] == "specialist:li"
    await phone.send({"type": "chat.send", "call_id": call_id, "text": "手机"})
    assert (await specialist.recv("chat.message", call_id=call_id))["from"] == phone.me
    await phone.send({"type": "call.hangup", "call_id": call_id})
    await specialist.recv("call.ended", call_id=call_id)
    await kiosk.send({"type": "call.request", "queue": "tax"})
    assert (await kiosk.recv("call.queued"))["call_id"] != call_id
