"""Leave the kiosk, keep your place: a phone takes a waiting call over (`call.handoff`),
on both routing backends."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web

from server import keys
from server.storage.handoffs import handoff_tickets
from tests.helpers import (
    WAIT_S,
    Peer,
    add_terminal,
    connect,
    queued_kiosk,
    quick_specialist,
    say_hello,
    specialist_ready,
)


async def _waiting(client: Any, terminal: str) -> tuple[Peer, str, int]:
    """A kiosk with a call waiting: the peer, the call id, its position."""
    kiosk, queued = await queued_kiosk(client, await add_terminal(client.server.app, terminal))
    return kiosk, str(queued["call_id"]), int(queued["position"])


async def _ticket(kiosk: Peer, call_id: str) -> str:
    await kiosk.send({"type": "call.handoff", "call_id": call_id})
    ready = await kiosk.recv("call.handoff_ready")
    assert ready["call_id"] == call_id
    url = str(ready["url"])
    assert url.startswith("/m/vwm_") and len(url) > len("/m/vwm_") + 24
    return url.removeprefix("/m/")


async def _hello(client: Any, token: str, resume: str | None = None) -> tuple[Peer, dict[str, Any]]:
    """A phone's hello: its peer and the first answer (`welcome` or `error`)."""
    peer = await say_hello(client, token, resume)
    frame = await peer.ws.receive_json(timeout=15)
    if frame["type"] == "welcome":
        peer.welcome = frame
    return peer, frame


async def _closed(peer: Peer) -> int | None:
    frame = await peer.ws.receive(timeout=15)
    assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), frame
    return peer.ws.close_code


async def test_the_phone_takes_the_call_over_and_keeps_its_place(app_client: Any) -> None:
    app = app_client.server.app
    alice = await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    first, first_call, _ = await _waiting(app_client, "T1")
    kiosk, call_id, position = await _waiting(app_client, "T2")
    assert position == 2
    before = dt.datetime.now(dt.UTC)
    await kiosk.send({"type": "call.handoff", "call_id": call_id})
    ready = await kiosk.recv("call.handoff_ready")
    assert set(ready) == {"type", "call_id", "url", "expires_at"}
    expires = dt.datetime.fromisoformat(ready["expires_at"])
    assert dt.timedelta(minutes=9) < expires - before <= dt.timedelta(minutes=10, seconds=5)
    ticket = ready["url"].removeprefix("/m/")
    qr = await app_client.get(f"/m/{ticket}/qr.svg")
    assert qr.status == 200 and qr.content_type == "image/svg+xml"
    assert (await qr.text()).lstrip().startswith("<svg")

    phone, welcome = await _hello(app_client, ticket)
    assert welcome["type"] == "welcome" and welcome["role"] == "visitor"
    assert welcome["participant_id"] == f"visitor:{welcome['id']}"
    queued = await phone.recv("call.queued")
    assert (queued["call_id"], queued["position"]) == (call_id, 2)
    await kiosk.recv("call.handed_off", call_id=call_id)
    assert (await app_client.get(f"/m/{ticket}/qr.svg")).status == 404  # used: no QR any more

    # The kiosk is free: it neither holds nor can cancel the phone's call, and asks anew.
    await kiosk.send({"type": "call.cancel", "call_id": call_id})
    await kiosk.error("not_in_call")
    await kiosk.send({"type": "call.request", "queue": "tax"})
    again = await kiosk.recv("call.queued")
    assert again["call_id"] != call_id and again["position"] == 3

    # The place moves with the queue, and the phone hears it.
    await first.send({"type": "call.cancel", "call_id": first_call})
    assert (await phone.recv("call.position", call_id=call_id))["position"] == 1

    # Offered with the kiosk's terminal and site, answered: the phone is the caller.
    await alice.send({"type": "agent.status", "status": "available"})
    offered = await alice.recv("call.offered", call_id=call_id)
    assert (offered["terminal"]["id"], offered["terminal"]["site"]["id"]) == ("T2", "park1")
    await alice.send({"type": "call.accept", "call_id": call_id})
    connected = await phone.recv("call.connected", call_id=call_id)
    assert connected["you"] == phone.me
    assert {(p["id"], p["role"]) for p in connected["participants"]} == {
        (phone.me, "visitor"), ("specialist:alice", "specialist")}
    await alice.recv("call.connected", call_id=call_id)
    await phone.send({"type": "rtc.description", "call_id": call_id, "to": "specialist:alice",
                      "description": {"type": "offer", "sdp": "v=0"}})
    relayed = await alice.recv("rtc.description", call_id=call_id)
    assert relayed["from"] == phone.me
    await phone.send({"type": "chat.send", "call_id": call_id, "text": "你好"})
    assert (await alice.recv("chat.message", call_id=call_id))["from"] == phone.me
    await phone.send({"type": "call.hangup", "call_id": call_id})
    ended = await phone.recv("call.ended", call_id=call_id)
    await phone.send({"type": "session.rate", "session_id": ended["session_id"], "score": 5})
    await phone.recv("saved", what="rating")

    detail = await app[keys.DB].get_session(ended["session_id"])
    assert detail is not None
    assert (detail.terminal_id, detail.site_id, detail.rating) == ("T2", "park1", 5)
    assert [e.type for e in detail.events].count("handed_off") == 1
    assert phone.me in {p.participant_id for p in detail.participants}
    day = dt.timedelta(days=1)
    for by, key in (("queue", "tax"), ("site", "park1")):
        report = await app[keys.DB].report(by, before - day, before + day, {})
        assert {r.key: r.handoffs for r in report.rows} == {key: 1}, by


async def test_a_ticket_opens_once(app_client: Any) -> None:
    app = app_client.server.app
    await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk, call_id, _ = await _waiting(app_client, "T1")
    ticket = await _ticket(kiosk, call_id)
    spare = await _ticket(kiosk, call_id)  # asked twice: the first one opened wins
    phone, _ = await _hello(app_client, ticket)
    await phone.recv("call.queued", call_id=call_id)
    other, refused = await _hello(app_client, ticket)
    assert (refused["type"], refused["code"]) == ("error", "ticket_used")
    assert await _closed(other) == 4401
    late, refused = await _hello(app_client, spare)
    assert (refused["type"], refused["code"]) == ("error", "ticket_expired")
    await _closed(late)
    wrong, refused = await _hello(app_client, ticket, resume="not-the-phones-token")
    assert refused["code"] == "ticket_used"
    assert await _closed(wrong) == 4401
    unknown, refused = await _hello(app_client, "vwm_" + "x" * 32)
    assert refused["code"] == "unauthorized"
    assert await _closed(unknown) == 4401
    await phone.send({"type": "ping"})
    await phone.recv("pong")  # the phone is still the one connection of that visitor


@pytest.mark.parametrize("how", ["ten_minutes", "call_over"])
async def test_an_expired_ticket_is_refused(app_client: Any, how: str) -> None:
    app: web.Application = app_client.server.app
    await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk, call_id, _ = await _waiting(app_client, "T1")
    ticket = await _ticket(kiosk, call_id)
    if how == "ten_minutes":
        async with app[keys.DB]._write() as conn:
            await conn.execute(sa.update(handoff_tickets).values(
                expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    else:
        await kiosk.send({"type": "call.cancel", "call_id": call_id})
        await kiosk.recv("call.ended", call_id=call_id)
    assert (await app_client.get(f"/m/{ticket}/qr.svg")).status == 404
    phone, refused = await _hello(app_client, ticket)
    assert (refused["type"], refused["code"]) == ("error", "ticket_expired")
    assert await _closed(phone) == 4401
    if how == "ten_minutes":  # the kiosk still holds its call
        await kiosk.send({"type": "call.cancel", "call_id": call_id})
        await kiosk.recv("call.ended", call_id=call_id)


async def test_a_visitor_acts_on_its_own_call_only(app_client: Any) -> None:
    app = app_client.server.app
    alice = await specialist_ready(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    other, other_call, _ = await _waiting(app_client, "T1")
    await alice.recv("call.offered", call_id=other_call)
    await alice.send({"type": "call.accept", "call_id": other_call})
    await other.recv("call.connected", call_id=other_call)
    kiosk, call_id, _ = await _waiting(app_client, "T2")
    phone, _ = await _hello(app_client, await _ticket(kiosk, call_id))
    await phone.recv("call.queued", call_id=call_id)
    for message in (
        {"type": "call.cancel", "call_id": other_call},
        {"type": "call.hangup", "call_id": other_call},
        {"type": "chat.send", "call_id": other_call, "text": "hi"},
        {"type": "rtc.description", "call_id": other_call, "to": "specialist:alice",
         "description": {"type": "offer", "sdp": "v=0"}},
        {"type": "rtc.candidate", "call_id": other_call, "to": "terminal:T1",
         "candidate": {"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host"}},
    ):
        await phone.send(message)
        error = await phone.error("not_in_call")
        assert error["call_id"] == other_call
    for message in ({"type": "call.request", "queue": "tax"},
                    {"type": "call.handoff", "call_id": call_id}):
        await phone.send(message)
        await phone.error("forbidden")
    assert [c for c, _ in await app[keys.BOARD].services.router.waiting("tax")] == [call_id]
    await phone.send({"type": "call.cancel", "call_id": call_id})  # its own: allowed
    assert (await phone.recv("call.ended", call_id=call_id))["reason"] == "cancelled"


async def test_a_kiosk_away_at_the_hand_off_hears_of_it_when_back(app_client: Any) -> None:
    app = app_client.server.app
    await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    token = await add_terminal(app, "T1")
    kiosk, queued = await queued_kiosk(app_client, token)
    call_id = queued["call_id"]
    ticket = await _ticket(kiosk, call_id)
    await kiosk.close()
    phone, _ = await _hello(app_client, ticket)
    await phone.recv("call.queued", call_id=call_id)
    kiosk = await connect(app_client, token, resume=kiosk.welcome["resume"])
    assert kiosk.welcome["resumed"] is True
    await kiosk.recv("call.handed_off", call_id=call_id)
    assert [m for m in kiosk.inbox if m["type"] == "call.queued"] == []


async def _gone(app: web.Application, call_id: str) -> None:
    """Wait (polling, bounded) until the call's session is closed in the log."""
    async with asyncio.timeout(WAIT_S):
        while True:
            rows, _ = await app[keys.DB].list_sessions()
            if any(r.call_id == call_id and r.state != "queued" for r in rows):
                return
            await asyncio.sleep(0.05)


async def test_kiosk_and_phone_each_lose_only_their_own_call(aiohttp_client: Any,
                                                              make_app: Any) -> None:
    client = await aiohttp_client(make_app(server={"resume_grace_s": 0.5}))
    app = client.server.app
    await connect(client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk, handed, _ = await _waiting(client, "T1")
    phone, _ = await _hello(client, await _ticket(kiosk, handed))
    await phone.recv("call.queued", call_id=handed)
    await kiosk.recv("call.handed_off", call_id=handed)
    await kiosk.send({"type": "call.request", "queue": "tax"})
    own = (await kiosk.recv("call.queued"))["call_id"]
    await kiosk.close()  # past the grace the kiosk's own call ends, not the phone's
    await _gone(app, own)
    await phone.send({"type": "ping"})
    await phone.recv("pong")
    assert [m for m in phone.inbox if m["type"] == "call.ended"] == []
    assert (await app[keys.BOARD].services.router.get_call(handed)) is not None
    await phone.close()  # the phone gone for good: its call ends as the kiosk's would
    await _gone(app, handed)
    rows, _ = await app[keys.DB].list_sessions()
    assert {(r.call_id, r.state, r.end_reason) for r in rows} == {
        (own, "abandoned", "terminal_lost"), (handed, "abandoned", "terminal_lost")}


async def test_the_phone_resumes_after_a_reconnect(app_client: Any) -> None:
    app = app_client.server.app
    alice = await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk, call_id, _ = await _waiting(app_client, "T1")
    ticket = await _ticket(kiosk, call_id)
    phone, welcome = await _hello(app_client, ticket)
    await phone.recv("call.queued", call_id=call_id)
    await phone.close()  # a reload, or the phone changed network
    phone, again = await _hello(app_client, ticket, resume=welcome["resume"])
    assert (again["type"], again["resumed"], again["id"]) == ("welcome", True, welcome["id"])
    queued = await phone.recv("call.queued", call_id=call_id)
    assert (queued["position"], queued["resumed"]) == (1, True)
    await alice.send({"type": "agent.status", "status": "available"})
    await alice.recv("call.offered", call_id=call_id)
    await alice.send({"type": "call.accept", "call_id": call_id})
    await phone.recv("call.connected", call_id=call_id)
    await phone.close()
    phone, third = await _hello(app_client, ticket, resume=again["resume"])
    assert third["resumed"] is True
    resumed = await phone.recv("call.connected", call_id=call_id)
    assert resumed["resumed"] is True and resumed["you"] == phone.me
    assert (await alice.recv("participant.reconnected"))["participant"] == phone.me


async def test_a_ticket_whose_call_was_answered_sends_the_visitor_back(app_client: Any) -> None:
    """The specialist answered before the phone opened the ticket: the phone is told so
    (`ticket_answered`, words in both catalogs), not that its call is over; the kiosk talks."""
    app = app_client.server.app
    alice = await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk, call_id, _ = await _waiting(app_client, "T1")
    ticket = await _ticket(kiosk, call_id)
    await alice.send({"type": "agent.status", "status": "available"})
    await alice.recv("call.offered", call_id=call_id)
    await alice.send({"type": "call.accept", "call_id": call_id})
    await alice.recv("call.connected", call_id=call_id)
    await kiosk.recv("call.connected", call_id=call_id)
    phone, refused = await _hello(app_client, ticket)
    assert (refused["type"], refused["code"]) == ("error", "ticket_answered")
    assert await _closed(phone) == 4401
