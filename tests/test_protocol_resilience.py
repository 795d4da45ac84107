"""Protocol v1 when connections drop: resume within the grace, and what happens after it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from server import keys
from tests.helpers import (
    add_terminal,
    close_code,
    connect,
    connected_call,
    queued_kiosk,
    quick_specialist,
    routing_state,
    specialist_ready,
)

App = Callable[..., web.Application]
SHORT_GRACE = {"resume_grace_s": 0.5}


async def event_types(app: web.Application, session_id: str) -> list[str]:
    detail = await app[keys.DB].get_session(session_id)
    assert detail is not None
    return [e.type for e in detail.events]


async def test_terminal_resumes_its_queue_place(app_client: Any) -> None:
    app = app_client.server.app
    await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    tokens = [await add_terminal(app, t) for t in ("T1", "T2")]
    t1 = await connect(app_client, tokens[0])
    await t1.send({"type": "call.request", "queue": "tax"})
    queued = await t1.recv("call.queued")
    t2 = await connect(app_client, tokens[1])
    await t2.send({"type": "call.request", "queue": "tax"})
    assert (await t2.recv("call.queued"))["position"] == 2
    await t1.close()
    again = await connect(app_client, tokens[0], resume=t1.welcome["resume"])
    assert again.welcome["resumed"] is True
    back = await again.recv("call.queued")
    assert (back["call_id"], back["position"], back["resumed"]) == (queued["call_id"], 1, True)
    await t2.send({"type": "ping"})
    await t2.recv("pong")
    assert [m for m in t2.inbox if m["type"] == "call.position"] == []


async def test_terminal_resumes_its_call(app_client: Any) -> None:
    call = await connected_call(app_client)
    await call.kiosk.close()
    kiosk = await connect(app_client, call.kiosk_token, resume=call.kiosk.welcome["resume"])
    connected = await kiosk.recv("call.connected")
    assert (connected["call_id"], connected["session_id"]) == (call.call_id, call.session_id)
    assert connected["resumed"] is True and connected["you"] == call.kiosk_id
    back = await call.agent.recv("participant.reconnected")
    assert (back["call_id"], back["participant"]) == (call.call_id, call.kiosk_id)
    await call.agent.send({"type": "chat.send", "call_id": call.call_id, "text": "still there?"})
    assert (await kiosk.recv("chat.message"))["text"] == "still there?"


async def test_terminal_lost_while_waiting_is_abandoned(aiohttp_client: Any,
                                                        make_app: App) -> None:
    client = await aiohttp_client(make_app(server=SHORT_GRACE))
    app = client.server.app
    alice = await specialist_ready(client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk = await connect(client, await add_terminal(app, "T1"))
    await kiosk.send({"type": "call.request", "queue": "tax"})
    call_id = (await kiosk.recv("call.queued"))["call_id"]
    await alice.recv("call.offered", call_id=call_id)
    await kiosk.close()
    withdrawn = await alice.recv("call.withdrawn", call_id=call_id)
    assert withdrawn["reason"] == "terminal_lost"
    await alice.recv("agent.status", status="available")
    rows, _ = await app[keys.DB].list_sessions()
    assert (rows[0].state, rows[0].end_reason) == ("abandoned", "terminal_lost")
    assert (await routing_state(app, calls=[call_id]))[f"call:{call_id}"] is None


async def test_terminal_lost_in_call_ends_it(aiohttp_client: Any, make_app: App) -> None:
    client = await aiohttp_client(make_app(server=SHORT_GRACE))
    call = await connected_call(client)
    await call.kiosk.close()
    ended = await call.agent.recv("call.ended")
    assert (ended["call_id"], ended["reason"]) == (call.call_id, "terminal_lost")
    await call.agent.recv("agent.status", status="wrap_up")
    app = client.server.app
    types = await event_types(app, call.session_id)
    assert types[-1] == "participant_left" and "ended" in types
    rows, _ = await app[keys.DB].list_sessions()
    assert (rows[0].state, rows[0].end_reason) == ("ended", "terminal_lost")


async def test_specialist_lost_in_call_requeues_at_the_head(aiohttp_client: Any,
                                                            make_app: App) -> None:
    client = await aiohttp_client(make_app(server=SHORT_GRACE))
    app = client.server.app
    call = await connected_call(client)
    bob = await connect(client, await quick_specialist(app, "bob", {"tax": 1}))
    t2 = await connect(client, await add_terminal(app, "T2"))
    await t2.send({"type": "call.request", "queue": "tax"})
    waiting = await t2.recv("call.queued")
    assert waiting["position"] == 1
    await call.agent.close()
    requeued = await call.kiosk.recv("call.requeued")
    assert (requeued["call_id"], requeued["position"], requeued["reason"]) == (
        call.call_id, 1, "agent_lost")
    moved = await t2.recv("call.position")
    assert (moved["call_id"], moved["position"]) == (waiting["call_id"], 2)
    await bob.send({"type": "agent.status", "status": "available"})
    offered = await bob.recv("call.offered")
    assert offered["call_id"] == call.call_id
    await bob.send({"type": "call.accept", "call_id": call.call_id})
    again = await call.kiosk.recv("call.connected")
    assert again["session_id"] == call.session_id
    assert {p["id"] for p in again["participants"]} == {call.kiosk_id, "specialist:bob"}
    types = await event_types(app, call.session_id)
    assert types.index("requeued") < types.index("offered", types.index("requeued"))
    assert types.count("answered") == 2


async def test_hello_without_resume_replaces_the_old_connection(app_client: Any) -> None:
    app = app_client.server.app
    await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    token = await add_terminal(app, "T1")
    old, _ = await queued_kiosk(app_client, token)
    new = await connect(app_client, token)
    assert new.welcome["resumed"] is False
    assert await close_code(old.ws) == 4409
    await new.send({"type": "ping"})
    await new.recv("pong")
