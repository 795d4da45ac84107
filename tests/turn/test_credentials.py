"""TURN REST credentials as an operator and coturn see them: every connection gets its own
entry in `welcome.ice_servers` beside the static servers, coturn accepts them and refuses
them once expired, and `vwin turn config` prints a configuration coturn runs with."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from aioice.turn import create_turn_endpoint

from server.app import create_app
from server.config import ConfigError
from server.turn import check_allocation, rest_credentials, turn_credentials_issued
from server.turnserver import turnserver_conf
from tests.helpers import add_terminal, quick_specialist
from tests.turn.coturn import SECRET, Coturn

STUN = {"urls": ["stun:stun.example.org:3478"]}


async def _welcome(client: Any, token: str) -> dict[str, Any]:
    ws = await client.ws_connect("/ws")
    await ws.send_str(json.dumps({"type": "hello", "token": token}))
    welcome = json.loads((await ws.receive(timeout=15)).data)
    await ws.close()
    assert welcome["type"] == "welcome"
    return welcome


async def test_each_connection_gets_its_own_credentials(aiohttp_client: Any,
                                                        coturn: Coturn) -> None:
    settings = coturn.settings()
    settings.ice.servers.append(STUN)
    client = await aiohttp_client(create_app(settings))
    app = client.server.app
    before = turn_credentials_issued()
    terminal = await _welcome(client, await add_terminal(app, "T1"))
    specialist = await _welcome(client, await quick_specialist(app, "li", {"tax": 1}))
    assert turn_credentials_issued() == before + 2
    for welcome, principal in ((terminal, "terminal:T1"), (specialist, "specialist:li")):
        static, turn = welcome["ice_servers"]
        assert static == STUN
        assert turn["urls"] == [coturn.url("udp"), coturn.url("tcp")]
        expiry, _, who = turn["username"].partition(":")
        assert who == principal
        assert abs(int(expiry) - (time.time() + coturn.turn["ttl_s"])) < 5
        digest = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
        assert turn["credential"] == base64.b64encode(digest).decode()


async def test_without_a_secret_only_the_static_servers(aiohttp_client: Any,
                                                        make_app: Any) -> None:
    client = await aiohttp_client(make_app(ice={"servers": [STUN]}))
    welcome = await _welcome(client, await add_terminal(client.server.app, "T1"))
    assert welcome["ice_servers"] == [STUN]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_coturn_relays_with_fresh_credentials_and_refuses_expired(
        coturn: Coturn, transport: str) -> None:
    turn = coturn.settings().turn
    relay = await check_allocation(turn, coturn.url(transport))
    assert relay.startswith("127.0.0.1:")
    with pytest.raises(ConnectionError, match="401"):  # well past: coturn's clock ticks by
        await check_allocation(turn, coturn.url(transport), ttl_s=-120)  # whole seconds
    wrong = coturn.settings(secret="not-the-secret").turn
    with pytest.raises(ConnectionError, match="401"):
        await check_allocation(wrong, coturn.url(transport))


def test_rest_credentials_name_the_expiry() -> None:
    username, credential, expiry = rest_credentials("s", "terminal:T1", 60, 1_000_000.5)
    assert (username, expiry) == ("1000060:terminal:T1", 1_000_060)
    assert base64.b64decode(credential) == hmac.new(b"s", username.encode(), "sha1").digest()


def test_turn_config_denies_private_ranges_but_the_recorders(coturn: Coturn) -> None:
    text = turnserver_conf(coturn.settings(recorder_hosts=["10.1.2.3", "192.168.7.0/24"],
                                           allow_loopback=False))
    lines = text.splitlines()
    assert "use-auth-secret" in lines and f"static-auth-secret={SECRET}" in lines
    assert "realm=vwin-test" in lines and f"listening-port={coturn.port}" in lines
    for denied in ("10.0.0.0-10.255.255.255", "127.0.0.0-127.255.255.255",
                   "192.168.0.0-192.168.255.255", "172.16.0.0-172.31.255.255"):
        assert f"denied-peer-ip={denied}" in lines
    assert "allowed-peer-ip=10.1.2.3" in lines
    assert "allowed-peer-ip=192.168.7.0-192.168.7.255" in lines
    assert "allow-loopback-peers" not in lines
    assert "no-tls" in lines and not any(line.startswith("cert=") for line in lines)
    tls = coturn.settings()
    tls.server.tls_cert, tls.server.tls_key = "/etc/ssl/vwin/fullchain.pem", "/etc/ssl/k.pem"
    with_tls = turnserver_conf(tls).splitlines()
    assert {"tls-listening-port=5349", "cert=/etc/ssl/vwin/fullchain.pem",
            "pkey=/etc/ssl/k.pem"} <= set(with_tls) and "no-tls" not in with_tls


def test_turn_settings_that_cannot_work_are_refused() -> None:
    from tests.helpers import make_settings

    with pytest.raises(ConfigError, match=r"turn\.urls"):
        make_settings("sqlite+aiosqlite://", turn={"secret": "x"})
    with pytest.raises(ConfigError, match=r"turn\.local"):
        make_settings("sqlite+aiosqlite://", turn={"local": True})
    with pytest.raises(ConfigError, match="not a turn"):
        make_settings("sqlite+aiosqlite://", turn={"secret": "x", "urls": ["stun:a:1"]})


async def test_a_connection_outliving_its_credentials_is_pushed_fresh_ones(
        aiohttp_client: Any, coturn: Coturn) -> None:
    client = await aiohttp_client(create_app(coturn.settings(ttl_s=2)))
    ws = await client.ws_connect("/ws")
    await ws.send_str(json.dumps({"type": "hello",
                                  "token": await add_terminal(client.server.app, "T1")}))
    welcome = json.loads((await ws.receive(timeout=15)).data)
    first = welcome["ice_servers"][-1]
    pushed: list[tuple[float, dict[str, Any]]] = []
    async with asyncio.timeout(10):
        while len(pushed) < 2:
            msg = json.loads((await ws.receive()).data)
            if msg["type"] == "ice.servers":
                pushed.append((time.time(), msg["ice_servers"][-1]))
    await ws.close()
    expiry = int(first["username"].split(":")[0])
    for at, server in pushed:  # each before the credentials it replaces expire
        assert at < expiry + 1 and server["username"].endswith(":terminal:T1")
        assert server["urls"] == first["urls"]
        expiry = int(server["username"].split(":")[0])
    relay, _ = await create_turn_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", coturn.port),
                                          pushed[-1][1]["username"],
                                          pushed[-1][1]["credential"])
    relay.close()
