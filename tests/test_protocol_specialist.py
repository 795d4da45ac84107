"""Protocol v1, the specialist's side: offers, timeouts, declines, strategies, overflow, wrap-up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from server import keys
from tests.helpers import (
    Peer,
    add_terminal,
    connect,
    connected_call,
    eventually,
    log_size,
    quick_specialist,
    routing_state,
    specialist_ready,
)

App = Callable[..., web.Application]
FAST_TAX = {"id": "tax", "name": "Tax", "ring_timeout_s": 0.5, "wrapup_s": 0.5}


async def ask(client: Any, terminal_id: str, queue: str = "tax") -> tuple[Peer, str]:
    kiosk = await connect(client, await add_terminal(client.server.app, terminal_id))
    await kiosk.send({"type": "call.request", "queue": queue})
    return kiosk, str((await kiosk.recv("call.queued"))["call_id"])


async def test_ring_timeout_offers_the_next_specialist(aiohttp_client: Any,
                                                       make_app: App) -> None:
    client = await aiohttp_client(make_app(queues=[FAST_TAX]))
    app = client.server.app
    alice = await specialist_ready(client, await quick_specialist(app, "alice", {"tax": 1}))
    bob = await specialist_ready(client, await quick_specialist(app, "bob", {"tax": 1}))
    _, call_id = await ask(client, "T1")
    offered = await alice.recv("call.offered", call_id=call_id)
    assert offered["ring_timeout_s"] == 0.5
    withdrawn = await alice.recv("call.withdrawn")
    assert (withdrawn["call_id"], withdrawn["reason"]) == (call_id, "timeout")
    await alice.recv("agent.status", status="available")
    await bob.recv("call.offered", call_id=call_id)


async def test_an_answer_to_a_withdrawn_offer_does_not_take_the_next(app_client: Any) -> None:
    """Alice's offer is withdrawn (her connection dropped) and the call rings her again
    when she is back: an answer naming offer 1, sent as it ended, is refused instead of
    taking offer 2, which she may not have seen yet (it could reach her after
    `call.connected`). An answer naming offer 2, or none, takes it."""
    app = app_client.server.app
    token = await quick_specialist(app, "alice", {"tax": 1})
    alice = await specialist_ready(app_client, token)
    _, call_id = await ask(app_client, "T1")
    assert (await alice.recv("call.offered", call_id=call_id))["offer"] == 1
    await alice.close()

    async def withdrawn() -> bool:
        state = await routing_state(app, ["alice"], [call_id])
        return bool(state[f"call:{call_id}"][0] == "queued")

    await eventually(withdrawn)  # the server saw her go (else the resume keeps offer 1)
    alice = await connect(app_client, token, resume=alice.welcome["resume"])
    second = await alice.recv("call.offered", call_id=call_id)
    assert second["offer"] == 2
    for verb in ("accept", "decline"):
        await alice.send({"type": f"call.{verb}", "call_id": call_id, "offer": 1})
        await alice.error("offer_gone")
    assert (await routing_state(app, ["alice"], [call_id]))["agent:alice"] == ("ringing", call_id)
    await alice.send({"type": "call.accept", "call_id": call_id, "offer": 2})
    connected = await alice.recv("call.connected", call_id=call_id)
    assert not [m for m in alice.inbox if m["type"] == "call.offered"]
    detail = await app[keys.DB].get_session(connected["session_id"])
    assert [(e.type, e.data.get("offer")) for e in detail.events
            if e.type in ("offered", "withdrawn", "answered")] == [
        ("offered", 1), ("withdrawn", 1), ("offered", 2), ("answered", 2)]


async def test_two_missed_offers_set_away(aiohttp_client: Any, make_app: App) -> None:
    client = await aiohttp_client(make_app(queues=[FAST_TAX]))
    app = client.server.app
    alice = await specialist_ready(client, await quick_specialist(app, "alice", {"tax": 1}))
    _, call_id = await ask(client, "T1")
    for _ in range(2):
        await alice.recv("call.offered", call_id=call_id)
        await alice.recv("call.withdrawn", reason="timeout")
    await alice.recv("agent.status", status="away", reason="missed_offers")
    state = await routing_state(app, ["alice"], [call_id])
    assert state["agent:alice"] == ("away", None)
    assert state[f"call:{call_id}"][0] == "queued"


async def test_decline_goes_to_the_next_and_never_back(app_client: Any) -> None:
    app = app_client.server.app
    alice = await specialist_ready(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    bob = await specialist_ready(app_client, await quick_specialist(app, "bob", {"tax": 1}))
    _, call_id = await ask(app_client, "T1")
    await alice.recv("call.offered", call_id=call_id)
    await alice.send({"type": "call.decline", "call_id": call_id})
    assert (await alice.recv("call.withdrawn"))["reason"] == "declined"
    await bob.recv("call.offered", call_id=call_id)
    await bob.send({"type": "call.decline", "call_id": call_id})
    await bob.recv("call.withdrawn", reason="declined")
    await bob.send({"type": "ping"})
    await bob.recv("pong")  # the decline, and the dispatch after it, are done
    state = await routing_state(app, ["alice", "bob"], [call_id])
    assert state[f"call:{call_id}"] == ("queued", None, [], 1)
    assert state["agent:alice"] == ("available", None) == state["agent:bob"]
    assert not [m for m in alice.inbox if m["type"] == "call.offered"]
    await alice.send({"type": "call.accept", "call_id": call_id})
    await alice.error("offer_gone")


async def test_a_caller_declined_by_the_only_specialist_rings_again_after_the_block(
        aiohttp_client: Any, make_app: App) -> None:
    """Not stranded: the one specialist on duty declines; the call is theirs again once
    `decline_block_s` is over (not before), and they can answer it."""
    client = await aiohttp_client(make_app(queues=[{**FAST_TAX, "ring_timeout_s": 20,
                                                    "decline_block_s": 1}]))
    app = client.server.app
    alice = await specialist_ready(client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk, call_id = await ask(client, "T1")
    first = await alice.recv("call.offered", call_id=call_id)
    await alice.send({"type": "call.decline", "call_id": call_id, "offer": first["offer"]})
    await alice.recv("call.withdrawn", call_id=call_id, reason="declined")
    declined_at = time.monotonic()
    again = await alice.recv("call.offered", call_id=call_id)
    assert time.monotonic() - declined_at > 0.5  # kept out for the block (1 s), not less
    assert again["offer"] == first["offer"] + 1
    await alice.send({"type": "call.accept", "call_id": call_id, "offer": again["offer"]})
    connected = await alice.recv("call.connected", call_id=call_id)
    await kiosk.recv("call.connected", call_id=call_id)
    detail = await app[keys.DB].get_session(connected["session_id"])
    assert [(e.type, e.data.get("offer")) for e in detail.events
            if e.type in ("offered", "declined", "answered")] == [
        ("offered", 1), ("declined", 1), ("offered", 2), ("answered", 2)]


async def test_lower_skill_level_first(app_client: Any) -> None:
    app = app_client.server.app
    senior = await specialist_ready(app_client, await quick_specialist(app, "alice", {"tax": 2}))
    expert = await specialist_ready(app_client, await quick_specialist(app, "bob", {"tax": 1}))
    _, call_id = await ask(app_client, "T1")
    await expert.recv("call.offered", call_id=call_id)
    assert not [m for m in senior.inbox if m["type"] == "call.offered"]


@pytest.mark.parametrize("first", ["alice", "bob"])
async def test_longest_idle_first(app_client: Any, first: str) -> None:
    app = app_client.server.app
    tokens = {n: await quick_specialist(app, n, {"tax": 1}) for n in ("alice", "bob")}
    order = [first, "bob" if first == "alice" else "alice"]
    peers = {n: await specialist_ready(app_client, tokens[n]) for n in order}
    _, call_id = await ask(app_client, "T1")
    await peers[first].recv("call.offered", call_id=call_id)


@pytest.mark.parametrize("strategy,expected", [("longest-idle", "alice"),
                                               ("fewest-calls", "bob")])
async def test_strategy_breaks_ties(aiohttp_client: Any, make_app: App, strategy: str,
                                    expected: str) -> None:
    client = await aiohttp_client(make_app(queues=[
        {"id": "tax", "name": "Tax", "strategy": strategy}]))
    app = client.server.app
    call = await connected_call(client, "T1", "alice")
    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    await call.agent.recv("agent.status", status="wrap_up")
    await call.agent.send({"type": "agent.wrapup_done"})
    await call.agent.recv("agent.status", status="available")
    bob = await specialist_ready(client, await quick_specialist(app, "bob", {"tax": 1}))
    _, call_id = await ask(client, "T2")
    peer = call.agent if expected == "alice" else bob
    await peer.recv("call.offered", call_id=call_id)


async def test_overflow_offers_to_the_other_queue(aiohttp_client: Any, make_app: App) -> None:
    client = await aiohttp_client(make_app(queues=[
        {"id": "deregistration", "name": "Dereg", "overflow_after_s": 0.3,
         "overflow_to": "registration"},
        {"id": "registration", "name": "Reg"},
    ]))
    app = client.server.app
    await connect(client, await quick_specialist(app, "carol", {"deregistration": 1}))
    bob = await specialist_ready(client, await quick_specialist(app, "bob", {"registration": 1}))
    _, call_id = await ask(client, "T1", "deregistration")
    offered = await bob.recv("call.offered", call_id=call_id)
    assert (offered["queue"], offered["overflow_from"]) == ("deregistration", "deregistration")
    await bob.send({"type": "call.accept", "call_id": call_id})
    await bob.recv("call.connected", call_id=call_id)


async def test_wrapup_done_makes_available_and_offers_next(app_client: Any) -> None:
    call = await connected_call(app_client)
    t2, waiting = await ask(app_client, "T2")
    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    ended = await call.agent.recv("call.ended")
    assert (ended["reason"], ended["by"]) == ("hangup", call.kiosk_id)
    await call.agent.recv("agent.status", status="wrap_up")
    state = await routing_state(app_client.server.app, ["alice"], [waiting])
    assert state["agent:alice"][0] == "wrap_up" and state[f"call:{waiting}"][0] == "queued"
    await call.agent.send({"type": "agent.wrapup_done"})
    assert (await call.agent.recv("agent.status", status="available"))["reason"] == "wrapup_done"
    await call.agent.recv("call.offered", call_id=waiting)
    del t2


async def test_wrapup_times_out(aiohttp_client: Any, make_app: App) -> None:
    client = await aiohttp_client(make_app(queues=[FAST_TAX]))
    call = await connected_call(client)
    await call.agent.send({"type": "call.hangup", "call_id": call.call_id})
    ended = await call.kiosk.recv("call.ended")
    assert (ended["reason"], ended["by"]) == ("hangup", call.agent_id)
    await call.agent.recv("agent.status", status="wrap_up")
    available = await call.agent.recv("agent.status", status="available")
    assert available["reason"] == "wrapup_timeout"


async def test_status_change_while_ringing_is_busy(app_client: Any) -> None:
    app = app_client.server.app
    alice = await specialist_ready(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    _, call_id = await ask(app_client, "T1")
    await alice.recv("call.offered", call_id=call_id)
    await alice.send({"type": "agent.status", "status": "away"})
    error = await alice.error("busy")
    assert "ringing" in error["message"]
    state = await routing_state(app, ["alice"], [call_id])
    assert state["agent:alice"] == ("ringing", call_id)
    await alice.send({"type": "call.accept", "call_id": call_id})
    await alice.recv("call.connected")


async def test_wrapup_done_outside_wrapup_is_an_error(app_client: Any) -> None:
    app = app_client.server.app
    alice = await specialist_ready(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    events = await log_size(app)
    await alice.send({"type": "agent.wrapup_done"})
    error = await alice.recv("error", timeout=5)  # a reply takes milliseconds
    assert "wrap" in error["message"]
    assert (await routing_state(app, ["alice"]))["agent:alice"] == ("available", None)
    assert await log_size(app) == events
