"""Building the real app for tests and talking to it as a client would."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web

from server import keys
from server.auth import hash_password, new_terminal_token, token_hash
from server.config import Settings, load_settings

WAIT_S = 15.0  # generous: a busy 2-core machine must still pass


def make_settings(storage_url: str, backend: str = "memory", **sections: Any) -> Settings:
    overrides: dict[str, Any] = {
        "storage": {"url": storage_url},
        "routing": {"backend": backend},
        "server": {"node_id": "test"},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_settings(env={}, overrides=overrides)


async def add_specialist(app: web.Application, username: str, skills: dict[str, int],
                         password: str = "secret-pass", department: str | None = None,
                         name: str | None = None) -> str:
    """Create the account and return a login token for it."""
    db = app[keys.DB]
    await db.add_user(username, "specialist", hash_password(password), name or username.title(),
                      department, skills)
    result = await app[keys.AUTH].login(username, password, "test")
    assert result is not None
    return result.token


async def add_manager(app: web.Application, username: str = "boss",
                      password: str = "manager-pass") -> str:
    await app[keys.DB].add_user(username, "manager", hash_password(password), "Boss", None, {})
    result = await app[keys.AUTH].login(username, password, "test")
    assert result is not None
    return result.token


async def add_terminal(app: web.Application, terminal_id: str, site_id: str = "park1") -> str:
    """Create the site (once) and the terminal; return the device token."""
    db = app[keys.DB]
    if await db.get_site(site_id) is None:
        await db.add_site(site_id, f"Site {site_id}", "park")
    token = new_terminal_token()
    await db.add_terminal(terminal_id, site_id, f"Terminal {terminal_id}", token_hash(token))
    return token


class Peer:
    """A signalling client: sends dicts, waits for messages by type."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.inbox: list[dict[str, Any]] = []
        self.welcome: dict[str, Any] = {}

    @property
    def me(self) -> str:
        return str(self.welcome["participant_id"])

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def recv(self, type_: str, timeout: float = WAIT_S, **match: Any) -> dict[str, Any]:
        """The first message of `type_` (and matching fields), received or still to come."""
        for i, msg in enumerate(self.inbox):
            if msg["type"] == type_ and all(msg.get(k) == v for k, v in match.items()):
                return self.inbox.pop(i)
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.receive()
                if frame.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"socket closed ({frame.type}, {self.ws.close_code}) "
                                          f"waiting for {type_}; inbox {self.inbox}")
                msg = json.loads(frame.data)
                if msg["type"] == type_ and all(msg.get(k) == v for k, v in match.items()):
                    return msg  # type: ignore[no-any-return]
                self.inbox.append(msg)

    async def error(self, code: str | None = None) -> dict[str, Any]:
        err = await self.recv("error")
        if code is not None:
            assert err["code"] == code, err
        return err

    def drop(self, type_: str) -> None:
        self.inbox = [m for m in self.inbox if m["type"] != type_]

    async def close(self) -> None:
        await self.ws.close()


async def connect(client: Any, token: str, resume: str | None = None) -> Peer:
    ws = await client.ws_connect("/ws")
    peer = Peer(ws)
    hello: dict[str, Any] = {"type": "hello", "token": token}
    if resume:
        hello["resume"] = resume
    await peer.send(hello)
    peer.welcome = await peer.recv("welcome")
    return peer


async def specialist_ready(client: Any, token: str) -> Peer:
    peer = await connect(client, token)
    await peer.send({"type": "agent.status", "status": "available"})
    await peer.recv("agent.status", status="available")
    return peer
