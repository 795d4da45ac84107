"""Issue 16: what a node remembers per call or per principal ends with them, also when the
steps that end a call run on another node. Two apps in one process on one Redis: every
kiosk on node A, the specialist on node B, so each call is queued on A and answered,
hung up or cancelled on B (as after node 1's restart in the bench day, when every desk
stayed on node 2 and the kiosks came back to node 1 one by one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from server import keys
from server.storage.migrate import upgrade
from tests.helpers import (
    Peer,
    add_terminal,
    connect,
    eventually,
    quick_specialist,
    specialist_ready,
)

CALLS = 9
TERMINALS = 3


@pytest.fixture
def routing_backend() -> str:
    return "redis"


async def _visit(a: Any, b: Any, desk: Peer, token: str, n: int) -> None:
    kiosk = await connect(a, token)
    await kiosk.send({"type": "call.request", "queue": "tax"})
    call_id = (await kiosk.recv("call.queued"))["call_id"]
    await desk.recv("call.offered", call_id=call_id)
    if n % 3 == 2:
        await kiosk.send({"type": "call.cancel", "call_id": call_id})
        await desk.recv("agent.status", status="available")
    else:
        await desk.send({"type": "call.accept", "call_id": call_id})
        connected = await desk.recv("call.connected")
        await kiosk.recv("call.connected")
        await desk.send({"type": "call.hangup", "call_id": call_id})
        await kiosk.recv("call.ended")
        await desk.send({"type": "session.wrapup", "session_id": connected["session_id"],
                         "outcome": "resolved"})
        await desk.send({"type": "agent.wrapup_done"})
        await desk.recv("agent.status", status="available")
    await kiosk.close()
    desk.inbox.clear()
    del b


async def test_calls_answered_on_another_node_leave_no_positions_behind(
        aiohttp_client: Any, make_app: Callable[..., web.Application], fresh_pg_url: str
) -> None:
    await upgrade(fresh_pg_url)
    node_a = make_app(fresh_pg_url, server={"node_id": "a"})
    node_b = make_app(fresh_pg_url, server={"node_id": "b"})
    a, b = await aiohttp_client(node_a), await aiohttp_client(node_b)
    desk = await specialist_ready(b, await quick_specialist(node_b, "alice", {"tax": 1}))
    tokens = [await add_terminal(node_a, f"T{i}") for i in range(TERMINALS)]
    for n in range(CALLS):
        await _visit(a, b, desk, tokens[n % TERMINALS], n)
    status = node_a[keys.BOARD].services.status

    async def forgotten() -> bool:
        return status.remembered() == 0

    await eventually(forgotten)  # each node forgets at its next flush of the queue
