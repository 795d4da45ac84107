"""Building the real app for tests and talking to it as a client would."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher

from server import keys
from server.auth import hash_password, new_terminal_token, token_hash
from server.config import Settings, load_settings

WAIT_S = 15.0  # generous: a busy 2-core machine must still pass


def make_settings(storage_url: str, backend: str = "memory", **sections: Any) -> Settings:
    overrides: dict[str, Any] = {
        "storage": {"url": storage_url},
        "routing": {"backend": backend},
        "server": {"node_id": "test"},
        "recording": {"enabled": False},  # a test that records asks: recording={...}
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            overrides.setdefault(name, {}).update(values)
        else:
            overrides[name] = values  # a list (e.g. `queues`) replaces the default one
    return load_settings(env={}, overrides=overrides)


async def add_specialist(
    app: web.Application,
    username: str,
    skills: dict[str, int],
    password: str = "secret-pass",
    department: str | None = None,
    name: str | None = None,
) -> str:
    """Create the account and return a login token for it."""
    db = app[keys.DB]
    await db.add_user(
        username,
        "specialist",
        hash_password(password),
        name or username.title(),
        department,
        skills,
    )
    result = await app[keys.AUTH].login(username, password, "test")
    assert result is not None
    return result.token


async def add_manager(
    app: web.Application, username: str = "boss", password: str = "manager-pass"
) -> str:
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
        self.token = ""  # the hello's, where a test connects again with it

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
        try:
            async with asyncio.timeout(timeout):
                while True:
                    frame = await self.ws.receive()
                    if frame.type != aiohttp.WSMsgType.TEXT:
                        raise ConnectionError(
                            f"socket closed ({frame.type}, {self.ws.close_code}) "
                            f"waiting for {type_}; inbox {self.inbox}"
                        )
                    msg = json.loads(frame.data)
                    if msg["type"] == type_ and all(msg.get(k) == v for k, v in match.items()):
                        return msg  # type: ignore[no-any-return]
                    self.inbox.append(msg)
        except TimeoutError:
            raise TimeoutError(f"no {type_} {match or ''} within {timeout} s; "
                               f"inbox {self.inbox}") from None

    async def error(self, code: str | None = None) -> dict[str, Any]:
        err = await self.recv("error")
        if code is not None:
            assert err["code"] == code, err
        return err

    def drop(self, type_: str) -> None:
        self.inbox = [m for m in self.inbox if m["type"] != type_]

    async def close(self) -> None:
        await self.ws.close()


async def say_hello(client: Any, token: str, resume: str | None = None) -> Peer:
    """A socket that has sent its `hello`; the answer is still to be read."""
    peer = Peer(await client.ws_connect("/ws"))
    hello: dict[str, Any] = {"type": "hello", "token": token}
    if resume:
        hello["resume"] = resume
    await peer.send(hello)
    return peer


async def connect(client: Any, token: str, resume: str | None = None) -> Peer:
    peer = await say_hello(client, token, resume)
    peer.welcome = await peer.recv("welcome")
    return peer


async def queued_kiosk(client: Any, token: str, queue: str = "tax") -> tuple[Peer, dict[str, Any]]:
    """A kiosk connected with `token` and its call waiting: the peer and its `call.queued`."""
    kiosk = await connect(client, token)
    await kiosk.send({"type": "call.request", "queue": queue})
    return kiosk, await kiosk.recv("call.queued")


async def specialist_ready(client: Any, token: str) -> Peer:
    peer = await connect(client, token)
    await peer.send({"type": "agent.status", "status": "available"})
    await peer.recv("agent.status", status="available")
    return peer


# ---- added for the protocol / HTTP suites ----------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class InCall:
    """A terminal and a specialist connected in one call."""

    def __init__(
        self,
        kiosk: Peer,
        agent: Peer,
        kiosk_msg: dict[str, Any],
        agent_msg: dict[str, Any],
        tokens: tuple[str, str],
    ) -> None:
        self.kiosk = kiosk
        self.agent = agent
        self.kiosk_token, self.agent_token = tokens
        self.call_id = str(kiosk_msg["call_id"])
        self.session_id = str(kiosk_msg["session_id"])
        self.kiosk_id = str(kiosk_msg["you"])
        self.agent_id = str(agent_msg["you"])


async def connected_call(
    client: Any, terminal_id: str = "T1", username: str = "alice", queue: str = "tax"
) -> InCall:
    """Log a specialist in, queue a call from a new terminal and accept it."""
    app = client.server.app
    tokens = (
        await add_terminal(app, terminal_id),
        await quick_specialist(app, username, {queue: 1}),
    )
    agent = await specialist_ready(client, tokens[1])
    kiosk = await connect(client, tokens[0])
    await kiosk.send({"type": "call.request", "queue": queue})
    queued = await kiosk.recv("call.queued")
    await agent.recv("call.offered", call_id=queued["call_id"])
    await agent.send({"type": "call.accept", "call_id": queued["call_id"]})
    return InCall(
        kiosk, agent, await kiosk.recv("call.connected"), await agent.recv("call.connected"), tokens
    )


async def routing_state(
    app: web.Application, agents: Sequence[str] = (), calls: Sequence[str] = ()
) -> dict[str, Any]:
    """What routing knows, read through the Router interface (any backend)."""
    board = app[keys.BOARD].services
    state: dict[str, Any] = {}
    for queue in board.queues:
        snap = await board.router.snapshot(queue, board.clock())
        state[f"queue:{queue}"] = (
            await board.router.waiting(queue),
            snap.available,
            snap.busy,
            snap.away,
            snap.logged_in,
        )
    for agent_id in agents:
        agent = await board.router.get_agent(agent_id)
        state[f"agent:{agent_id}"] = None if agent is None else (agent.state, agent.call_id)
    for call_id in calls:
        call = await board.router.get_call(call_id)
        state[f"call:{call_id}"] = (
            None
            if call is None
            else (
                call.state,
                call.ringing_agent,
                list(call.agents),
                await board.router.position(call_id),
            )
        )
    return state


async def log_size(app: web.Application) -> int:
    """How many events the session log holds (sessions and agent events)."""
    async with app[keys.DB]._read() as conn:
        result = await conn.exec_driver_sql("SELECT count(*) FROM session_events")
        return int(result.scalar_one())


# Argon2id with the production parameters costs seconds on a busy 2-core machine; accounts
# made for protocol tests get a cheap argon2id hash and a token issued straight into the store.
_QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
QUICK_PASSWORD = "secret-pass"
_QUICK_HASH = _QUICK_HASHER.hash(QUICK_PASSWORD)


async def issue_token(app: web.Application, username: str) -> str:
    """A login token for an existing account, without the password round."""
    token = secrets.token_urlsafe(32)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    await app[keys.DB].add_token(token_hash(token), username, expires)
    return token


async def quick_specialist(
    app: web.Application, username: str, skills: dict[str, int], name: str | None = None,
    department: str | None = None,
) -> str:
    """Like `add_specialist` (password QUICK_PASSWORD), in milliseconds."""
    await app[keys.DB].add_user(
        username, "specialist", _QUICK_HASH, name or username.title(), department, skills
    )
    return await issue_token(app, username)


async def quick_manager(app: web.Application, username: str = "boss", name: str = "Boss") -> str:
    await app[keys.DB].add_user(username, "manager", _QUICK_HASH, name, None, {})
    return await issue_token(app, username)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = WAIT_S) -> None:
    """Wait until `check()` holds, for state that no message announces (e.g. a socket's cleanup)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read until the server closes the socket; the close code it sent."""
    async with asyncio.timeout(WAIT_S):
        while True:
            frame = await ws.receive()
            if frame.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                return ws.close_code


async def refused(client: Any, hello: dict[str, Any] | None) -> tuple[dict[str, Any], int | None]:
    """Open /ws, send `hello` (or nothing): the error received and the close code."""
    ws = await client.ws_connect("/ws")
    if hello is not None:
        await ws.send_str(json.dumps(hello))
    error = await Peer(ws).recv("error")
    return error, await close_code(ws)
