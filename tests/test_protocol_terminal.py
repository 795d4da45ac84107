"""Protocol v1, the terminal's side: asking for a call, refusals, cancelling, queue positions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from server import keys
from tests.helpers import (
    add_terminal,
    connect,
    log_size,
    quick_specialist,
    routing_state,
    specialist_ready,
)

App = Callable[..., web.Application]
VALID_USCC = "91310115591693856A"


async def test_unknown_queue_is_an_error(app_client: Any) -> None:
    app = app_client.server.app
    await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk = await connect(app_client, await add_terminal(app, "T1"))
    events = await log_size(app)
    await kiosk.send({"type": "call.request", "queue": "fishing-licences"})
    error = await kiosk.error("unknown_queue")
    assert "fishing-licences" in error["message"]
    assert await log_size(app) == events


@pytest.mark.parametrize("uscc", [VALID_USCC[:-1] + "B", "91310115591693856", "9131011559169385IA"])
async def test_bad_uscc_is_an_error(app_client: Any, uscc: str) -> None:
    app = app_client.server.app
    await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk = await connect(app_client, await add_terminal(app, "T1"))
    events = await log_size(app)
    await kiosk.send({"type": "call.request", "queue": "tax", "enterprise": {"uscc": uscc}})
    await kiosk.error("invalid_uscc")
    assert await log_size(app) == events
    await kiosk.send({"type": "call.request", "queue": "tax", "enterprise": {"uscc": VALID_USCC}})
    assert (await kiosk.recv("call.queued"))["position"] == 1


async def test_no_specialist_logged_in_rejects(app_client: Any) -> None:
    app = app_client.server.app
    await connect(app_client, await quick_specialist(app, "bob", {"registration": 1}))
    kiosk = await connect(app_client, await add_terminal(app, "T1"))
    await kiosk.send({"type": "call.request", "queue": "tax"})
    rejected = await kiosk.recv("call.rejected")
    assert rejected == {"type": "call.rejected", "queue": "tax", "reason": "no_specialist"}
    rows, _ = await app[keys.DB].list_sessions()
    assert [(r.queue, r.state, r.end_reason) for r in rows] == [("tax", "rejected",
                                                                 "no_specialist")]
    await kiosk.send({"type": "ping"})
    await kiosk.recv("pong")


async def test_closed_queue_rejects(aiohttp_client: Any, make_app: App) -> None:
    client = await aiohttp_client(make_app(queues=[
        {"id": "tax", "name": "Tax", "open": False},
        {"id": "general", "name": "General"},
    ]))
    app = client.server.app
    await specialist_ready(client, await quick_specialist(app, "alice", {"tax": 1, "general": 1}))
    kiosk = await connect(client, await add_terminal(app, "T1"))
    await kiosk.send({"type": "call.request", "queue": "tax"})
    assert (await kiosk.recv("call.rejected"))["reason"] == "closed"
    await kiosk.send({"type": "call.request", "queue": "general"})
    await kiosk.recv("call.queued")


async def test_cancel_while_ringing(app_client: Any) -> None:
    app = app_client.server.app
    alice = await specialist_ready(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk = await connect(app_client, await add_terminal(app, "T1"))
    await kiosk.send({"type": "call.request", "queue": "tax"})
    call_id = (await kiosk.recv("call.queued"))["call_id"]
    await alice.recv("call.offered", call_id=call_id)
    await kiosk.send({"type": "call.cancel", "call_id": call_id})
    ended = await kiosk.recv("call.ended")
    assert (ended["call_id"], ended["reason"]) == (call_id, "cancelled")
    assert (await alice.recv("call.withdrawn"))["reason"] == "cancelled"
    await alice.recv("agent.status", status="available")
    state = await routing_state(app, ["alice"], [call_id])
    assert state["agent:alice"][0] == "available" and state[f"call:{call_id}"] is None
    rows, _ = await app[keys.DB].list_sessions()
    assert (rows[0].state, rows[0].end_reason) == ("abandoned", "cancelled")
    await kiosk.send({"type": "call.cancel", "call_id": call_id})
    await kiosk.error("not_in_call")


async def test_second_request_while_one_is_active(app_client: Any) -> None:
    app = app_client.server.app
    await connect(app_client, await quick_specialist(app, "alice", {"tax": 1, "general": 1}))
    kiosk = await connect(app_client, await add_terminal(app, "T1"))
    await kiosk.send({"type": "call.request", "queue": "tax"})
    first = await kiosk.recv("call.queued")
    events = await log_size(app)
    await kiosk.send({"type": "call.request", "queue": "general"})
    error = await kiosk.error("call_in_progress")
    assert first["call_id"] in error["message"]
    assert await log_size(app) == events
    assert [c for c, _ in await app[keys.BOARD].services.router.waiting("general")] == []


async def test_a_late_copy_of_a_request_makes_no_second_call(app_client: Any) -> None:
    """A copy of the kiosk's request read after the call it made was cancelled: refused
    `request_done` with the request's key (the kiosk, on to its next visit, tells it from a
    refusal of its current request), logged rejected; nobody is offered a second call."""
    app = app_client.server.app
    alice = await specialist_ready(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk = await connect(app_client, await add_terminal(app, "T1"))
    request = {"type": "call.request", "queue": "tax", "request_id": "visit-1"}
    await kiosk.send(request)
    call_id = (await kiosk.recv("call.queued"))["call_id"]
    await alice.recv("call.offered", call_id=call_id)
    await kiosk.send({"type": "call.cancel", "call_id": call_id})
    await kiosk.recv("call.ended", call_id=call_id)
    await kiosk.send(request)
    error = await kiosk.error("request_done")
    assert (error["refused"], error["request_id"]) == ("call.request", "visit-1")
    assert call_id in error["message"]
    rows, _ = await app[keys.DB].list_sessions()
    assert sorted((r.state, r.end_reason) for r in rows) == [
        ("abandoned", "cancelled"), ("rejected", "request_done")]
    await kiosk.send({**request, "request_id": "visit-2"})  # the next visit's
    next_call = (await kiosk.recv("call.queued"))["call_id"]
    assert (await alice.recv("call.offered"))["call_id"] == next_call


async def test_cancelling_someone_elses_call_is_refused(app_client: Any) -> None:
    app = app_client.server.app
    await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    t1 = await connect(app_client, await add_terminal(app, "T1"))
    t2 = await connect(app_client, await add_terminal(app, "T2"))
    await t1.send({"type": "call.request", "queue": "tax"})
    call_id = (await t1.recv("call.queued"))["call_id"]
    await t2.send({"type": "call.cancel", "call_id": call_id})
    await t2.error("not_in_call")
    assert [c for c, _ in await app[keys.BOARD].services.router.waiting("tax")] == [call_id]


@pytest.mark.parametrize("how", ["cancel", "answer"])
async def test_position_pushed_when_the_queue_moves(app_client: Any, how: str) -> None:
    app = app_client.server.app
    alice = await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    t1 = await connect(app_client, await add_terminal(app, "T1"))
    t2 = await connect(app_client, await add_terminal(app, "T2"))
    await t1.send({"type": "call.request", "queue": "tax"})
    first = await t1.recv("call.queued")
    await t2.send({"type": "call.request", "queue": "tax"})
    second = await t2.recv("call.queued")
    assert (first["position"], second["position"]) == (1, 2)
    assert second["estimated_wait_s"] >= first["estimated_wait_s"]
    if how == "cancel":
        await t1.send({"type": "call.cancel", "call_id": first["call_id"]})
    else:
        await alice.send({"type": "agent.status", "status": "available"})
        await alice.recv("call.offered", call_id=first["call_id"])
        await alice.send({"type": "call.accept", "call_id": first["call_id"]})
        await t1.recv("call.connected")
    moved = await t2.recv("call.position")
    assert (moved["call_id"], moved["position"]) == (second["call_id"], 1)
