"""Per-address caps on WebSocket connections (all, and not yet authenticated): the excess is
refused (HTTP 429 before the upgrade) while other addresses are still served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.app import create_app
from tests.helpers import Peer, add_terminal, close_code, make_settings

CAP, UNAUTHENTICATED = 4, 2


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    app = create_app(make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}",
        limits={"ws_per_address": CAP, "unauthenticated_per_address": UNAUTHENTICATED},
        server={"hello_timeout_s": 2}))
    yield await aiohttp_client(app)


@pytest.fixture
async def elsewhere() -> AsyncIterator[aiohttp.ClientSession]:
    """A client on another address (127.0.0.2, also loopback)."""
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as session:
        yield session


async def hello(client: Any, token: str) -> Peer:
    ws = await client.ws_connect("/ws")
    peer = Peer(ws)
    await peer.send({"type": "hello", "token": token})
    peer.welcome = await peer.recv("welcome")
    return peer


async def refused_upgrade(client: Any) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect("/ws")
    return caught.value.status


async def test_unauthenticated_connections_are_capped_per_address(
        client: Any, elsewhere: aiohttp.ClientSession) -> None:
    silent = [await client.ws_connect("/ws") for _ in range(UNAUTHENTICATED)]
    assert await refused_upgrade(client) == 429
    url = f"http://127.0.0.1:{client.server.port}/ws"
    other = await elsewhere.ws_connect(url)
    await other.send_json({"type": "hello",
                           "token": await add_terminal(client.server.app, "T9")})
    assert (await other.receive_json())["type"] == "welcome"
    # the hello deadline frees the slots
    for ws in silent:
        assert await close_code(ws) == 4401
    peer = await hello(client, await add_terminal(client.server.app, "T1"))
    assert peer.welcome["type"] == "welcome"


async def test_connections_are_capped_per_address(client: Any,
                                                  elsewhere: aiohttp.ClientSession) -> None:
    app = client.server.app
    peers = [await hello(client, await add_terminal(app, f"T{n}")) for n in range(CAP)]
    assert await refused_upgrade(client) == 429
    url = f"http://127.0.0.1:{client.server.port}/ws"
    other = await elsewhere.ws_connect(url)
    await other.send_json({"type": "hello", "token": await add_terminal(app, "T9")})
    assert (await other.receive_json())["type"] == "welcome"
    await peers[0].close()
    token = await add_terminal(app, "TX")
    async with asyncio.timeout(15):
        while True:  # the slot is freed once the server has seen the close
            try:
                await hello(client, token)
                break
            except aiohttp.WSServerHandshakeError:
                await asyncio.sleep(0.05)
