"""Hellos at once share one token query; a revoked device token is still refused at once."""

from __future__ import annotations

import asyncio
from typing import Any

from server import keys
from tests.helpers import add_terminal, connect, quick_manager, refused


async def test_a_burst_of_hellos_shares_queries_and_skips_the_revoked(
        aiohttp_client: Any, make_app: Any) -> None:
    app_client = await aiohttp_client(make_app(limits={  # one address, as after a site's restart
        "ws_per_address": 100, "unauthenticated_per_address": 100}))
    app = app_client.server.app
    tokens = [await add_terminal(app, f"T{i}") for i in range(40)]
    await app[keys.DB].revoke_terminal("T7")  # as `vwin terminal revoke` does, from outside
    coalescer = app[keys.AUTH]._terminals
    assert coalescer is not None
    before = coalescer.queries

    async def hello(token: str) -> tuple[str, Any]:
        ws = await app_client.ws_connect("/ws")
        await ws.send_json({"type": "hello", "token": token})
        return (await ws.receive_json())["type"], ws

    answers = await asyncio.gather(*(hello(t) for t in tokens))
    kinds = [kind for kind, _ in answers]
    assert kinds[7] == "error"
    assert kinds[:7] + kinds[8:] == ["welcome"] * 39
    assert coalescer.queries - before < len(tokens)  # some hellos went together
    for _, ws in answers:
        await ws.close()


async def test_revocation_takes_effect_at_once(app_client: Any) -> None:
    app = app_client.server.app
    token = await add_terminal(app, "T1")
    kiosk = await connect(app_client, token)
    await kiosk.close()
    await app[keys.DB].revoke_terminal("T1")  # from another process: nothing told this one
    error, code = await refused(app_client, {"type": "hello", "token": token})
    assert error["code"] == "unauthorized" and code == 4401

    other = await add_terminal(app, "T2")
    kiosk = await connect(app_client, other)
    manager = await quick_manager(app)
    resp = await app_client.post("/api/terminals/T2/revoke",
                                 headers={"Authorization": f"Bearer {manager}"})
    assert resp.status == 200
    async for _ in kiosk.ws:  # queue.status, then the close
        pass
    assert kiosk.ws.close_code == 4410
    error, code = await refused(app_client, {"type": "hello", "token": other})
    assert error["code"] == "unauthorized" and code == 4401


async def test_the_old_path_is_one_query_a_hello(aiohttp_client: Any, make_app: Any) -> None:
    client = await aiohttp_client(make_app(auth={"hello_batch": False}))
    app = client.server.app
    assert app[keys.AUTH]._terminals is None
    kiosk = await connect(client, await add_terminal(app, "T1"))
    assert kiosk.welcome["id"] == "T1"
