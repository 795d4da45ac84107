"""Issue 16: a node's memory stays flat over a day. After many calls through the real app
(kiosks reconnecting for each, calls answered and hung up by either side or cancelled)
the server holds no more of its own objects than after the first few: nothing per call,
per connection or per session is left behind in routing, presences, timers, outboxes,
log contexts or the sockets' handlers."""

from __future__ import annotations

import collections
import gc
from typing import Any

from tests.helpers import (
    Peer,
    add_terminal,
    connect,
    eventually,
    quick_specialist,
    specialist_ready,
)

WARM_CALLS = 6
MORE_CALLS = 18
TERMINALS = 4
OURS = ("server.", "signaling.", "aiohttp.web_ws", "aiohttp.web_protocol")
CACHES = ("server.storage.schema",)  # SQLAlchemy's bounded per-type caches


def _ours() -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        module = str(type(obj).__module__)
        if module.startswith(OURS) and not module.startswith(CACHES):
            found[f"{module}.{type(obj).__qualname__}"] += 1
    return found


async def _visit(client: Any, desk: Peer, token: str, n: int) -> None:
    kiosk = await connect(client, token)
    await kiosk.send({"type": "call.request", "queue": "tax"})
    queued = await kiosk.recv("call.queued")
    call_id = queued["call_id"]
    await desk.recv("call.offered", call_id=call_id)
    if n % 3 == 2:
        await kiosk.send({"type": "call.cancel", "call_id": call_id})
        await desk.recv("agent.status", status="available")
    else:
        await desk.send({"type": "call.accept", "call_id": call_id})
        connected = await kiosk.recv("call.connected")
        await desk.recv("call.connected")
        await kiosk.send({"type": "chat.send", "call_id": call_id, "text": "你好"})
        await desk.recv("chat.message")
        ender = kiosk if n % 3 == 0 else desk
        await ender.send({"type": "call.hangup", "call_id": call_id})
        await desk.recv("call.ended")
        await desk.send({"type": "session.wrapup", "session_id": connected["session_id"],
                         "outcome": "resolved"})
        await desk.send({"type": "agent.wrapup_done"})
        await desk.recv("agent.status", status="available")
    await kiosk.close()
    desk.inbox.clear()


async def test_many_calls_leave_nothing_behind(app_client: Any) -> None:
    app = app_client.server.app
    desk = await specialist_ready(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    tokens = [await add_terminal(app, f"T{i}") for i in range(TERMINALS)]
    for n in range(WARM_CALLS):
        await _visit(app_client, desk, tokens[n % TERMINALS], n)
    gc.collect()
    warm = _ours()
    gc.disable()  # freed as they end, not left in cycles for the collector to find
    try:
        for n in range(WARM_CALLS, WARM_CALLS + MORE_CALLS):
            await _visit(app_client, desk, tokens[n % TERMINALS], n)
        await _settled(warm)
    finally:
        gc.enable()


async def _settled(warm: collections.Counter[str]) -> None:

    def grown() -> dict[str, tuple[int, int]]:
        now = _ours()
        return {k: (warm[k], v) for k, v in now.items() if v > warm[k]}

    async def flat() -> bool:
        return not grown()

    try:
        await eventually(flat)
    except TimeoutError:
        raise AssertionError(f"after {MORE_CALLS} more calls (before, after), not counting "
                             f"what only the cycle collector would free: {grown()}") from None
