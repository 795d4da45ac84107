"""A real `vwin serve` killed by SIGKILL mid-call: on restart the session is `interrupted`."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from server.auth import new_terminal_token, token_hash
from server.storage.db import Database
from tests.helpers import WAIT_S, Peer, bearer, eventually

VWIN = str(Path(sys.executable).with_name("vwin"))
STARTUP_S = 60.0  # a cold interpreter on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `vwin serve` process on a fixed port and database."""

    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.base = f"http://127.0.0.1:{port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            VWIN, "serve", "--config", str(self.config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)

        async def healthy() -> bool:
            assert self.proc is not None and self.proc.returncode is None, "vwin serve exited"
            try:
                async with http.get(self.base + "/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await eventually(healthy, STARTUP_S)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def provision(url: str) -> tuple[str, str, str]:
    """A site, a terminal, a specialist and a manager; their tokens."""
    db = await Database.connect(url)
    try:
        await db.upgrade()
        await db.add_site("park1", "Jiading Park", "park")
        terminal = new_terminal_token()
        await db.add_terminal("T1", "park1", "Lobby", token_hash(terminal))
        tokens = [terminal]
        for name, role, skills in (("alice", "specialist", {"tax": 1}), ("boss", "manager", {})):
            await db.add_user(name, role, "not-a-password-hash", name.title(), None, skills)
            token = uuid.uuid4().hex + uuid.uuid4().hex
            await db.add_token(token_hash(token), name,
                               dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
            tokens.append(token)
    finally:
        await db.close()
    return tokens[0], tokens[1], tokens[2]


async def hello(http: aiohttp.ClientSession, base: str, token: str) -> Peer:
    peer = Peer(await http.ws_connect(base.replace("http", "ws") + "/ws"))
    await peer.send({"type": "hello", "token": token})
    peer.welcome = await peer.recv("welcome")
    return peer


async def call_in_progress(http: aiohttp.ClientSession, base: str, terminal: str,
                           specialist: str) -> tuple[Peer, Peer, dict[str, Any]]:
    """The specialist available, the terminal's call answered: (agent, kiosk, call.connected)."""
    agent = await hello(http, base, specialist)
    await agent.send({"type": "agent.status", "status": "available"})
    await agent.recv("agent.status", status="available")
    kiosk = await hello(http, base, terminal)
    await kiosk.send({"type": "call.request", "queue": "tax"})
    offered = await agent.recv("call.offered")
    await agent.send({"type": "call.accept", "call_id": offered["call_id"]})
    return agent, kiosk, await kiosk.recv("call.connected")


async def crash_mid_call(tmp_path: Path, url: str) -> None:
    terminal, specialist, manager = await provision(url)
    port = free_port()
    config = tmp_path / "serve.toml"
    config.write_text(f'[server]\nport = {port}\n[storage]\nurl = "{url}"\n')
    server = Server(config, port)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as http:
        try:
            await server.start(http)
            *_, connected = await call_in_progress(http, server.base, terminal, specialist)
            session_id = connected["session_id"]
            await server.kill()
            await server.start(http)
            async with http.get(server.base + "/api/sessions", headers=bearer(manager)) as resp:
                rows = (await resp.json())["sessions"]
            assert [(r["id"], r["state"], r["end_reason"]) for r in rows] == [
                (session_id, "interrupted", "interrupted")]
            async with http.get(f"{server.base}/api/sessions/{session_id}",
                                headers=bearer(manager)) as resp:
                events = [e["type"] for e in (await resp.json())["events"]]
            assert events[:2] == ["queued", "offered"] and "answered" in events
            assert events[-1] == "interrupted"
        finally:
            await server.kill()


async def test_crash_recovery_sqlite(tmp_path: Path) -> None:
    await crash_mid_call(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}")


async def test_crash_recovery_postgresql(tmp_path: Path, fresh_pg_url: str) -> None:
    await crash_mid_call(tmp_path, fresh_pg_url)
