"""Several departments in one session: invite, transfer, join and leave, through the server."""

from __future__ import annotations

from typing import Any

import pytest

from server import keys
from tests.helpers import Peer, add_specialist, add_terminal, connect, specialist_ready

QUEUES = [
    {"id": "registration", "name": "Registration", "ring_timeout_s": 2, "wrapup_s": 30},
    {"id": "tax", "name": "Tax", "ring_timeout_s": 2, "wrapup_s": 30},
]


async def _connected_call(client: Any) -> tuple[Peer, Peer, dict[str, Any]]:
    app = client.server.app
    reg = await specialist_ready(
        client, await add_specialist(app, "wang", {"registration": 1},
                                     department="market_regulation"))
    kiosk = await connect(client, await add_terminal(app, "T1"))
    await kiosk.send({"type": "call.request", "queue": "registration"})
    offered = await reg.recv("call.offered")
    await reg.send({"type": "call.accept", "call_id": offered["call_id"]})
    await kiosk.recv("call.connected")
    return kiosk, reg, await reg.recv("call.connected")


async def test_invite_a_queue_joins_a_third_participant(aiohttp_client: Any,
                                                        make_app: Any) -> None:
    client = await aiohttp_client(make_app(queues=QUEUES))
    app = client.server.app
    kiosk, reg, call = await _connected_call(client)
    tax = await specialist_ready(client, await add_specialist(app, "li", {"tax": 1},
                                                              department="tax"))
    await reg.send({"type": "call.invite", "call_id": call["call_id"], "queue": "tax"})
    assert (await kiosk.recv("invitation"))["state"] == "ringing"
    offer = await tax.recv("call.offered")
    assert offer["joins"] == call["call_id"] and offer["invited_by"] == "specialist:wang"
    assert offer["terminal"]["id"] == "T1"
    await tax.send({"type": "call.accept", "call_id": offer["call_id"]})

    joined = await tax.recv("call.connected")
    assert joined["call_id"] == call["call_id"] and joined["session_id"] == call["session_id"]
    assert {p["id"] for p in joined["participants"]} == {
        "terminal:T1", "specialist:wang", "specialist:li"}
    for peer in (kiosk, reg):
        note = await peer.recv("participant.joined")
        assert note["participant"]["id"] == "specialist:li"

    # The newcomer offers to each existing participant; the relay lets it through.
    for to, peer in (("terminal:T1", kiosk), ("specialist:wang", reg)):
        await tax.send({"type": "rtc.description", "call_id": call["call_id"], "to": to,
                        "description": {"type": "offer", "sdp": "v=0"}})
        assert (await peer.recv("rtc.description"))["from"] == "specialist:li"

    # The registration specialist leaves; the session goes on with the tax specialist.
    await reg.send({"type": "call.hangup", "call_id": call["call_id"]})
    assert (await reg.recv("call.ended"))["reason"] == "left"
    for peer in (kiosk, tax):
        left = await peer.recv("participant.left")
        assert left["participant"] == "specialist:wang"
    await kiosk.send({"type": "chat.send", "call_id": call["call_id"], "text": "还在吗"})
    assert (await tax.recv("chat.message"))["text"] == "还在吗"

    await kiosk.send({"type": "call.hangup", "call_id": call["call_id"]})
    assert (await tax.recv("call.ended"))["reason"] == "hangup"
    detail = await app[keys.DB].get_session(call["session_id"])
    assert detail is not None
    people = {p.participant_id for p in detail.participants}
    assert people == {"terminal:T1", "specialist:wang", "specialist:li"}
    assert "invited" in [e.type for e in detail.events]
    assert detail.state == "ended"


async def test_transfer_hands_the_caller_over(aiohttp_client: Any, make_app: Any) -> None:
    client = await aiohttp_client(make_app(queues=QUEUES))
    app = client.server.app
    kiosk, reg, call = await _connected_call(client)
    tax = await specialist_ready(client, await add_specialist(app, "li", {"tax": 1}))
    await reg.send({"type": "call.transfer", "call_id": call["call_id"], "specialist": "li"})
    offer = await tax.recv("call.offered")
    assert offer["transfer"] is True
    await tax.send({"type": "call.accept", "call_id": offer["call_id"]})
    await tax.recv("call.connected")
    ended = await reg.recv("call.ended")
    assert ended["reason"] == "transferred"
    await reg.recv("agent.status", status="wrap_up")
    left = await kiosk.recv("participant.left")
    assert left["participant"] == "specialist:wang" and left["reason"] == "transferred"
    await tax.send({"type": "rtc.candidate", "call_id": call["call_id"], "to": "terminal:T1",
                    "candidate": None})
    assert (await kiosk.recv("rtc.candidate"))["from"] == "specialist:li"
    await reg.send({"type": "rtc.candidate", "call_id": call["call_id"], "to": "terminal:T1",
                    "candidate": None})
    assert (await reg.error("not_in_call"))["refused"] == "rtc.candidate"


async def test_named_invite_declined_is_cancelled(aiohttp_client: Any, make_app: Any) -> None:
    client = await aiohttp_client(make_app(queues=QUEUES))
    app = client.server.app
    kiosk, reg, call = await _connected_call(client)
    tax = await specialist_ready(client, await add_specialist(app, "li", {"tax": 1}))
    await reg.send({"type": "call.invite", "call_id": call["call_id"], "specialist": "nobody"})
    assert (await reg.error("specialist_unavailable"))["refused"] == "call.invite"
    await reg.send({"type": "call.invite", "call_id": call["call_id"]})
    await reg.error("invalid_message")
    await reg.send({"type": "call.invite", "call_id": call["call_id"], "specialist": "li"})
    offer = await tax.recv("call.offered")
    await tax.send({"type": "call.decline", "call_id": offer["call_id"]})
    assert (await reg.recv("invitation", state="declined"))["specialist"] == "li"
    assert (await kiosk.recv("invitation", state="declined"))["invitation_id"] == offer["call_id"]
    await tax.recv("agent.status", status="available")
    # A terminal cannot invite, and a call can be invited into only by its specialists.
    await kiosk.send({"type": "call.invite", "call_id": call["call_id"], "queue": "tax"})
    await kiosk.error("forbidden")
    await tax.send({"type": "call.invite", "call_id": call["call_id"], "queue": "tax"})
    await tax.error("not_in_call")


@pytest.mark.parametrize("by", ["kiosk", "specialist"])  # the kiosk's own calls read early
async def test_pending_invitation_is_withdrawn_when_the_call_ends(aiohttp_client: Any,
                                                                  make_app: Any, by: str
                                                                  ) -> None:
    client = await aiohttp_client(make_app(queues=QUEUES))
    app = client.server.app
    kiosk, reg, call = await _connected_call(client)
    tax = await specialist_ready(client, await add_specialist(app, "li", {"tax": 1}))
    await reg.send({"type": "call.invite", "call_id": call["call_id"], "queue": "tax"})
    offer = await tax.recv("call.offered")
    await (kiosk if by == "kiosk" else reg).send({"type": "call.hangup",
                                                 "call_id": call["call_id"]})
    withdrawn = await tax.recv("call.withdrawn")
    assert withdrawn["call_id"] == offer["call_id"] and withdrawn["reason"] == "call_ended"
    await tax.recv("agent.status", status="available")
    await tax.send({"type": "call.accept", "call_id": offer["call_id"]})
    await tax.error("offer_gone")
    detail = await app[keys.DB].get_session(call["session_id"])
    assert detail is not None and detail.state == "ended"
