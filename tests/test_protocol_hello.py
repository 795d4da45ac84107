"""Protocol v1 at the door: `hello`, invalid frames, roles, ping, idle, rate and Origin checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.helpers import (
    Peer,
    add_terminal,
    close_code,
    connect,
    log_size,
    quick_manager,
    quick_specialist,
    refused,
    routing_state,
    specialist_ready,
)

App = Callable[..., web.Application]


async def test_no_hello_in_time_is_unauthorized(aiohttp_client: Any, make_app: App) -> None:
    client = await aiohttp_client(make_app(server={"hello_timeout_s": 0.5}))
    error, code = await refused(client, None)
    assert error["code"] == "unauthorized" and "hello" in error["message"]
    assert code == 4401


@pytest.mark.parametrize("first", [
    {"type": "hello", "token": "vwt_not-a-real-token"},
    {"type": "hello", "token": "some-login-token"},
    {"type": "ping"},
    {"type": "hello"},
])
async def test_bad_hello_is_unauthorized(app_client: Any, first: dict[str, Any]) -> None:
    error, code = await refused(app_client, first)
    assert error["code"] == "unauthorized"
    assert code == 4401


async def test_manager_cannot_signal(app_client: Any) -> None:
    token = await quick_manager(app_client.server.app)
    error, code = await refused(app_client, {"type": "hello", "token": token})
    assert error["code"] == "forbidden"
    assert code == 4403


async def test_welcome_fields(aiohttp_client: Any, make_app: App) -> None:
    ice = [{"urls": ["stun:stun.example.org:3478"]}]
    client = await aiohttp_client(make_app(ice={"servers": ice}))
    app = client.server.app
    kiosk = await connect(client, await add_terminal(app, "T1"))
    w = kiosk.welcome
    assert (w["role"], w["id"], w["name"]) == ("terminal", "T1", "Terminal T1")
    assert w["ice_servers"] == ice and isinstance(w["resume"], str) and len(w["resume"]) >= 16
    assert w["resumed"] is False and w["site"]["id"] == "park1"
    agent = await connect(client, await quick_specialist(app, "alice", {"tax": 1},
                                                       name="Alice Wang"))
    w = agent.welcome
    assert (w["role"], w["id"], w["name"]) == ("specialist", "alice", "Alice Wang")
    assert [q["id"] for q in w["queues"]] == ["tax"]
    assert w["resume"] != kiosk.welcome["resume"]


async def test_second_hello_is_an_error_and_connection_stays(app_client: Any) -> None:
    token = await add_terminal(app_client.server.app, "T1")
    kiosk = await connect(app_client, token)
    await kiosk.send({"type": "hello", "token": token})
    await kiosk.error("already_authenticated")
    await kiosk.send({"type": "ping"})
    await kiosk.recv("pong")


INVALID: list[tuple[str, str]] = [
    ("not json at all", "JSON"),
    ("[1, 2, 3]", "object"),
    ('{"no_type": 1}', "type"),
    ('{"type": 7}', "type"),
    ('{"type": "call.teleport"}', "unknown message type"),
    ('{"type": "call.request"}', "queue"),
    ('{"type": "call.request", "queue": 5}', "queue"),
    ('{"type": "call.request", "queue": ""}', "queue"),
    ('{"type": "call.request", "queue": "tax", "enterprise": "acme"}', "enterprise"),
    ('{"type": "call.request", "queue": "tax", "enterprise": {"uscc": "1234567890123456789"}}',
     "uscc"),
    ('{"type": "call.cancel"}', "call_id"),
    ('{"type": "call.cancel", "call_id": ["x"]}', "call_id"),
    ('{"type": "agent.status", "status": "asleep"}', "status"),
    ('{"type": "rtc.description", "call_id": "c", "to": "x", "description": {"type": "bogus"}}',
     "description"),
    ('{"type": "rtc.candidate", "call_id": "c", "to": "x"}', "candidate"),
    ('{"type": "chat.send", "call_id": "c", "text": ""}', "text"),
    ('{"type": "session.rate", "session_id": "s", "score": 9}', "score"),
    ('{"type": "session.wrapup", "session_id": "s", "outcome": "maybe"}', "outcome"),
]


async def test_invalid_frames_get_an_error_naming_the_problem(app_client: Any) -> None:
    app = app_client.server.app
    agent = await specialist_ready(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk = await connect(app_client, await add_terminal(app, "T1"))
    await kiosk.send({"type": "call.request", "queue": "tax"})
    call_id = (await kiosk.recv("call.queued"))["call_id"]
    await agent.recv("call.offered")
    before = await routing_state(app, ["alice"], [call_id])
    events = await log_size(app)
    for peer in (kiosk, agent):
        for frame, named in INVALID:
            await peer.ws.send_str(frame)
            error = await peer.error("invalid_message")
            assert named.lower() in error["message"].lower(), (frame, error)
        await peer.ws.send_bytes(b'{"type": "ping"}')
        assert "text" in (await peer.error("invalid_message"))["message"]
        await peer.send({"type": "ping", "padding": "x" * (65 * 1024)})
        assert "exceeds" in (await peer.error("invalid_message"))["message"]
        await peer.send({"type": "ping"})
        await peer.recv("pong")
    assert await routing_state(app, ["alice"], [call_id]) == before
    assert await log_size(app) == events


async def test_frame_over_socket_limit_closes(app_client: Any) -> None:
    kiosk = await connect(app_client, await add_terminal(app_client.server.app, "T1"))
    await kiosk.send({"type": "ping", "padding": "x" * (300 * 1024)})
    assert await close_code(kiosk.ws) == 1009


@pytest.mark.parametrize("role,frame", [
    ("terminal", {"type": "call.accept", "call_id": "c_1"}),
    ("terminal", {"type": "call.decline", "call_id": "c_1"}),
    ("terminal", {"type": "agent.status", "status": "available"}),
    ("terminal", {"type": "agent.wrapup_done"}),
    ("terminal", {"type": "session.wrapup", "session_id": "s", "outcome": "resolved"}),
    ("specialist", {"type": "call.request", "queue": "tax"}),
    ("specialist", {"type": "call.cancel", "call_id": "c_1"}),
    ("specialist", {"type": "session.rate", "session_id": "s", "score": 5}),
])
async def test_role_checks(app_client: Any, role: str, frame: dict[str, Any]) -> None:
    app = app_client.server.app
    if role == "terminal":
        peer = await connect(app_client, await add_terminal(app, "T1"))
    else:
        peer = await connect(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    events = await log_size(app)
    await peer.send(frame)
    error = await peer.error("forbidden")
    assert role in error["message"] and frame["type"] in error["message"]
    await peer.send({"type": "ping"})
    await peer.recv("pong")
    assert await log_size(app) == events


async def test_silent_connection_is_dropped(aiohttp_client: Any, make_app: App) -> None:
    client = await aiohttp_client(make_app(server={"idle_timeout_s": 1}))
    kiosk = await connect(client, await add_terminal(client.server.app, "T1"))
    await kiosk.send({"type": "ping"})
    await kiosk.recv("pong")
    assert await close_code(kiosk.ws) == 4408


async def test_message_flood_is_refused_then_closed(aiohttp_client: Any, make_app: App) -> None:
    client = await aiohttp_client(make_app(server={"rate_per_s": 1, "rate_burst": 5}))
    kiosk = await connect(client, await add_terminal(client.server.app, "T1"))
    for _ in range(30):
        if kiosk.ws.closed:
            break
        await kiosk.send({"type": "ping"})
    error = await kiosk.error("rate_limited")
    assert error["message"]
    assert await close_code(kiosk.ws) == 1008


async def test_foreign_origin_is_refused_before_upgrade(app_client: Any) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await app_client.ws_connect("/ws", headers={"Origin": "https://evil.example"})
    assert caught.value.status == 403


async def test_same_and_configured_origins_are_allowed(aiohttp_client: Any,
                                                       make_app: App) -> None:
    allowed = "https://kiosk.example.gov.cn"
    client = await aiohttp_client(make_app(server={"allowed_origins": [allowed]}))
    token = await add_terminal(client.server.app, "T1")
    own = f"http://{client.server.host}:{client.server.port}"
    for origin in (own, allowed):
        ws = await client.ws_connect("/ws", headers={"Origin": origin})
        peer = Peer(ws)
        await peer.send({"type": "hello", "token": token})
        assert (await peer.recv("welcome"))["role"] == "terminal"
        await ws.close()


async def test_frame_limit_counts_bytes_not_characters(app_client: Any) -> None:
    kiosk = await connect(app_client, await add_terminal(app_client.server.app, "T1"))
    for chars in (25_000, 20_000):  # 75 KB, then 60 KB of UTF-8
        frame = json.dumps({"type": "ping", "padding": "界" * chars}, ensure_ascii=False)
        await kiosk.ws.send_str(frame)
        if chars == 25_000:
            assert "exceeds" in (await kiosk.recv("error", timeout=5))["message"]
        else:
            await kiosk.recv("pong")
