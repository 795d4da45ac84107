"""A joint deregistration in one session: terminal + registration + tax specialist, real media.

The registration specialist invites the tax queue; the tax specialist joins and offers to
both others (a mesh of three); every pair connects and decodes the other's frames; both
departments sign the sole-proprietor deregistration; the audit chain verifies; the session
log shows both specialists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from server import keys
from tests.helpers import add_specialist, add_terminal
from tests.rtc_peers import RtcClient, use_loopback_when_alone

pytestmark = pytest.mark.slow

QUEUES = [
    {"id": "deregistration", "name": "Deregistration"},
    {"id": "tax", "name": "Tax"},
]
USCC = "92371000MA3MXH0E3W"  # a published sole-proprietorship code (check character valid)


@pytest.fixture
async def clients() -> AsyncIterator[list[RtcClient]]:
    use_loopback_when_alone()
    opened: list[RtcClient] = []
    yield opened
    for client in opened:
        await client.close()


async def _ready(client: Any, token: str, opened: list[RtcClient]) -> RtcClient:
    peer = await RtcClient.open(client, token)
    opened.append(peer)
    await peer.available()
    return peer


async def test_joint_deregistration_in_a_three_party_session(
        aiohttp_client: Any, make_app: Any, clients: list[RtcClient]) -> None:
    client = await aiohttp_client(make_app(queues=QUEUES))
    app = client.server.app
    wang = await _ready(client, await add_specialist(
        app, "wang", {"deregistration": 1}, department="market_regulation"), clients)
    li = await _ready(client, await add_specialist(app, "li", {"tax": 1}, department="tax"),
                      clients)
    kiosk = await RtcClient.open(client, await add_terminal(app, "T1"))
    clients.append(kiosk)

    await kiosk.send({"type": "call.request", "queue": "deregistration",
                      "enterprise": {"name": "嘉定区小王便利店", "uscc": USCC}})
    offered = await wang.recv("call.offered")
    await wang.send({"type": "call.accept", "call_id": offered["call_id"]})
    call = await wang.recv("call.connected")
    call_id = call["call_id"]
    await kiosk.recv("call.connected")
    await wang.call(call_id, kiosk.me)

    await wang.send({"type": "call.invite", "call_id": call_id, "queue": "tax"})
    invited = await li.recv("call.offered")
    assert invited["joins"] == call_id
    await li.send({"type": "call.accept", "call_id": invited["call_id"]})
    joined = await li.recv("call.connected")
    assert len(joined["participants"]) == 3
    for other in (kiosk, wang):
        await other.recv("participant.joined")
        await li.call(call_id, other.me)  # the newcomer offers to each participant

    pairs = [(kiosk, wang), (kiosk, li), (wang, li)]
    for a, b in pairs:
        for me, other in ((a, b), (b, a)):
            link = await me.frames(other.me, video=10, audio=20, timeout=60)
            assert link.pc.connectionState == "connected"

    await wang.send({"type": "action.start", "call_id": call_id,
                     "action": "sole_proprietor_deregistration",
                     "enterprise": {"name": "嘉定区小王便利店", "uscc": USCC}})
    started = await kiosk.recv("action.updated")
    action_id = started["action_id"]
    assert started["state"] == "open"
    await li.send({"type": "action.sign", "action_id": action_id,
                   "step": "licence_cancelled"})
    refusal = await li.recv("error")
    assert refusal["refused"] == "action.sign"  # tax cannot sign market regulation's step
    await wang.send({"type": "action.sign", "action_id": action_id,
                     "step": "licence_cancelled"})
    await li.send({"type": "action.sign", "action_id": action_id,
                   "step": "tax_clearance_confirmed"})
    for peer in (kiosk, wang, li):
        done = await peer.recv("action.updated", state="completed")
        signers = {s["id"]: s.get("signed_by") for s in done["steps"]}
        assert signers == {"licence_cancelled": "wang", "tax_clearance_confirmed": "li"}

    await kiosk.send({"type": "call.hangup", "call_id": call_id})
    for peer in (wang, li):
        await peer.recv("call.ended", call_id=call_id)

    db = app[keys.DB]
    count, problem = await db.verify_audit()
    assert problem is None and count >= 3
    detail = await db.get_session(call["session_id"])
    assert detail is not None
    specialists = {p.principal_id for p in detail.participants if p.role == "specialist"}
    assert specialists == {"wang", "li"}
