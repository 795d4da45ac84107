"""Every response, streamed ones and errors included, carries the security headers; no version
in `Server`; the `Host` header is never reflected into a header."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from tests.helpers import add_terminal, bearer, make_settings, quick_manager

EVIL_HOST = "evil.example"
REQUIRED = ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
            "Content-Security-Policy", "Cross-Origin-Opener-Policy")


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}"))
    yield await aiohttp_client(app)


def check(headers: Any, what: str) -> None:
    for name in REQUIRED:
        assert name in headers, (what, name)
    server = headers.get("Server", "")
    assert not any(ch.isdigit() for ch in server) and "aiohttp" not in server.lower(), (what,
                                                                                        server)
    for name, value in headers.items():
        assert EVIL_HOST not in value, (what, name, value)


async def test_every_kind_of_response_carries_the_headers(client: Any) -> None:
    manager = await quick_manager(client.server.app)
    await add_terminal(client.server.app, "T1")
    host = {"Host": EVIL_HOST}
    auth = {**host, **bearer(manager)}
    for path, headers in (("/login", host), ("/kiosk", host), ("/console", host),
                          ("/static/js/api.js", host), ("/api/me", host), ("/nowhere", host),
                          ("/api/sessions?colour=red", auth), ("/api/sessions.csv", auth),
                          ("/api/reports.csv", auth), ("/healthz", host), ("/api/sites", auth)):
        resp = await client.get(path, headers=headers, allow_redirects=False)
        check(resp.headers, path)
        await resp.read()
    resp = await client.post("/api/login", data=b"{", headers={**host,
                                                               "Content-Type": "application/json"})
    check(resp.headers, "bad login")
    stream = await client.get("/api/queues/stream", headers=auth)
    assert stream.status == 200
    check(stream.headers, "server-sent events")
    stream.close()
    ws = await client.ws_connect("/ws", headers=host)
    check(ws._response.headers, "websocket upgrade")
    await ws.close()


async def test_a_malformed_request_gets_no_version_either(client: Any) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(b"GET /\x01 HTTP/1.1\r\nHost: " + EVIL_HOST.encode() + b"\r\n\r\n")
    await writer.drain()
    head = (await asyncio.wait_for(reader.read(4096), 15)).decode("latin-1")
    writer.close()
    assert head.split("\r\n", 1)[0].endswith(" 400 Bad Request")
    assert "aiohttp" not in head.lower() and "Python/" not in head and EVIL_HOST not in head
