"""Real `vwin serve` processes sharing one Redis prefix and one fresh PostgreSQL database.

`Cluster` starts nodes on free ports, provisions accounts straight into the
database, logs specialists in over HTTP and opens signalling clients on any
node; `close()` stops whatever it started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from server.auth import hash_password, new_terminal_token, token_hash
from server.recording.embedded import new_recorder_token
from server.storage import Database
from tests.helpers import WAIT_S, Peer, bearer, eventually
from tests.recording.analysis import segments_settled
from tests.rtc_peers import RtcClient

ROOT = Path(__file__).resolve().parents[2]
QUEUES = """
[[queues]]
id = "tax"
name = "Tax"
ring_timeout_s = {ring}
wrapup_s = 0.2

[[queues]]
id = "registration"
name = "Registration"
ring_timeout_s = {ring}
wrapup_s = 0.2
"""


PORT_TRIES = 3
PORT_TAKEN = "Address already in use"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    def __init__(self, name: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.port = port
        self.proc = proc
        self.log = log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Cluster:
    def __init__(self, tmp: Path, pg_url: str, prefix: str, *, grace_s: float = 3.0,
                 ring_s: float = 5.0, redis_url: str = "redis://127.0.0.1:6379/0") -> None:
        self.tmp = tmp
        self.redis_url = redis_url
        self.pg_url = pg_url
        self.prefix = prefix
        self.grace_s = grace_s
        self.ring_s = ring_s
        self.nodes: dict[str, Node] = {}
        # No connection limit: the default of 100 would hold the 101st websocket back.
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.db: Database | None = None
        self._pingers: list[asyncio.Task[None]] = []

    async def provision(self) -> Database:
        if self.db is None:
            self.db = await Database.connect(self.pg_url)
            await self.db.upgrade()
            await self.db.add_site("park1", "Park One", "park")
            # An account first: nodes starting at once on an empty database would race
            # to create the first-run `admin`.
            await self.db.add_user("boss", "manager", hash_password("manager-pass"), "Boss",
                                   None, {})
        return self.db

    def config(self, name: str, port: int) -> Path:
        path = self.tmp / f"{name}.toml"
        path.write_text(f"""
[server]
host = "127.0.0.1"
port = {port}
node_id = "{name}"
resume_grace_s = {self.grace_s}
drain_timeout_s = 5
rate_per_s = 1000
rate_burst = 1000

[limits]
ws_per_address = 10000  # every test client is one address (loopback)
unauthenticated_per_address = 10000

[storage]
url = "{self.pg_url}"

[routing]
backend = "redis"
redis_url = "{self.redis_url}"
key_prefix = "{self.prefix}"
""" + QUEUES.format(ring=self.ring_s))
        return path

    async def start(self, *names: str) -> list[Node]:
        """Nodes on free ports, serving. A port another process took between `free_port`
        and the node's bind (the other test worker: a CI run's `Address already in use`)
        is given up for another one."""
        await self.provision()
        started = [self._spawn(name, free_port()) for name in names]
        for i, node in enumerate(started):
            for attempt in range(PORT_TRIES):
                try:
                    await self.wait_health(node, self.serving_status)
                    break
                except RuntimeError:
                    if attempt + 1 == PORT_TRIES or PORT_TAKEN not in node.output():
                        raise
                    node = started[i] = self._spawn(node.name, free_port())
        return started

    def _spawn(self, name: str, port: int) -> Node:
        log = self.tmp / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--config",
                 str(self.config(name, port))],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                env={**{k: v for k, v in os.environ.items() if not k.startswith("VWIN_")},
                     "PYTHONUNBUFFERED": "1"})
        node = self.nodes[name] = Node(name, port, proc, log)
        return node

    @property
    def serving_status(self) -> str:
        """What `/healthz` says once a node serves: `ok` when it has all it was promised."""
        return "ok"

    async def health(self, node: Node) -> str:
        try:
            async with self.http.get(node.url + "/healthz") as resp:
                return str((await resp.json())["status"])
        except (aiohttp.ClientError, OSError):
            return "down"

    async def wait_health(self, node: Node, status: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while await self.health(node) != status:
            if node.proc.poll() is not None and status != "down":
                raise RuntimeError(f"{node.name} exited:\n{node.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node.name} not {status}:\n{node.output()[-3000:]}")
            await asyncio.sleep(0.1)

    async def specialist(self, username: str, skills: dict[str, int]) -> str:
        db = await self.provision()
        await db.add_user(username, "specialist", hash_password("secret-pass"),
                          username.title(), None, skills)
        node = next(iter(self.nodes.values()))
        async with self.http.post(node.url + "/api/login",
                                  json={"username": username, "password": "secret-pass"}) as r:
            assert r.status == 200, await r.text()
            return str((await r.json())["token"])

    async def terminal(self, terminal_id: str) -> str:
        db = await self.provision()
        token = new_terminal_token()
        await db.add_terminal(terminal_id, "park1", f"Terminal {terminal_id}", token_hash(token))
        return token

    async def connect(self, node: Node, token: str, resume: str | None = None) -> Peer:
        ws = await self.http.ws_connect(node.url + "/ws")
        peer = Peer(ws)
        hello: dict[str, Any] = {"type": "hello", "token": token}
        if resume:
            hello["resume"] = resume
        await peer.send(hello)
        peer.welcome = await peer.recv("welcome")
        self._pingers.append(asyncio.create_task(_keep_alive(peer)))
        return peer

    async def ready(self, node: Node, token: str) -> Peer:
        peer = await self.connect(node, token)
        await peer.send({"type": "agent.status", "status": "available"})
        await peer.recv("agent.status", status="available")
        return peer

    def kill(self, node: Node) -> None:
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(WAIT_S)

    async def close(self) -> None:
        for task in self._pingers:
            task.cancel()
        await asyncio.gather(*self._pingers, return_exceptions=True)
        for node in self.nodes.values():
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            try:
                await asyncio.get_running_loop().run_in_executor(None, node.proc.wait, 15)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
        await self.http.close()
        if self.db is not None:
            await self.db.close()


class RecordingCluster(Cluster):
    """Nodes that record into one shared directory, with (`local_recorder`) or without their
    embedded recorder; `recorder()` runs `vwin recorder` processes against one node, `rtc()`
    opens aiortc parties."""

    def __init__(self, tmp: Path, pg_url: str, prefix: str, *,
                 local_recorder: bool = False,
                 redis_url: str = "redis://127.0.0.1:6379/0") -> None:
        super().__init__(tmp, pg_url, prefix, redis_url=redis_url)
        self.recording_dir = tmp / "recordings"
        self.local_recorder = local_recorder
        self.recorders: dict[str, subprocess.Popen[bytes]] = {}
        self.parties: list[RtcClient] = []
        self._manager: str | None = None

    def config(self, name: str, port: int) -> Path:
        path = super().config(name, port)
        path.write_text(path.read_text() + f"""
[recording]
dir = "{self.recording_dir}"
local_recorder = {str(self.local_recorder).lower()}
""")
        return path

    @property
    def serving_status(self) -> str:
        """Without an embedded recorder a node is `starting` (503) until a recorder joins,
        which the tests start once the nodes serve."""
        return "ok" if self.local_recorder else "starting"

    async def recorder(self, name: str, node: Node, capacity: int = 1,
                       others: Sequence[Node] = ()) -> None:
        """A `vwin recorder` connected to `node` (then the `others` in turn when it is
        lost); returns once it is in the pool."""
        db = await self.provision()
        token = new_recorder_token()
        await db.add_recorder(name, token_hash(token))
        urls = [arg for n in (node, *others) for arg in ("--url", f"ws://127.0.0.1:{n.port}/ws")]
        with (self.tmp / f"{name}.log").open("ab") as out:
            self.recorders[name] = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "recorder", *urls,
                 "--capacity", str(capacity)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                env={**{k: v for k, v in os.environ.items() if not k.startswith("VWIN_")},
                     "PYTHONUNBUFFERED": "1", "VWIN_RECORDING_TOKEN": token,
                     "VWIN_RECORDING_DIR": str(self.recording_dir)})
        await self.wait_recorder(node, name)

    async def wait_recorder(self, node: Node, name: str) -> None:
        """Until `GET /api/recorders` on `node` lists the recorder (connected to any node)."""
        async def listed() -> bool:
            process = self.recorders.get(name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"recorder {name} exited:\n"
                                   + (self.tmp / f"{name}.log").read_text()[-3000:])
            return name in {r["name"] for r in (await self.api(node, "/api/recorders"))[
                "recorders"]}

        await eventually(listed, timeout=60)

    async def api(self, node: Node, path: str) -> dict[str, Any]:
        """GET an API path as the provisioned manager."""
        if self._manager is None:
            async with self.http.post(node.url + "/api/login", json={
                    "username": "boss", "password": "manager-pass"}) as r:
                assert r.status == 200, await r.text()
                self._manager = str((await r.json())["token"])
        async with self.http.get(node.url + path, headers=bearer(self._manager)) as r:
            assert r.status == 200, await r.text()
            body: dict[str, Any] = await r.json()
            return body

    async def rtc(self, node: Node, token: str) -> RtcClient:
        """A terminal or specialist with real peer connections, connected to `node`."""
        party = await RtcClient.open(self.http, token, url=node.url + "/ws")
        self.parties.append(party)
        return party

    async def recorded_call(self, terminal: RtcClient, specialist: RtcClient) -> dict[str, Any]:
        """The specialist takes the terminal's call; `call.connected` (both say recorded)."""
        await specialist.available()
        await terminal.send({"type": "call.request", "queue": "tax"})
        queued = await terminal.recv("call.queued")
        await specialist.recv("call.offered", call_id=queued["call_id"])
        await specialist.send({"type": "call.accept", "call_id": queued["call_id"]})
        connected = await terminal.recv("call.connected")
        assert connected["recording"] is True
        assert (await specialist.recv("call.connected"))["recording"] is True
        return connected

    async def session(self, node: Node, session_id: str,
                      states: dict[int, str]) -> dict[str, Any]:
        """`GET /api/sessions/{id}` once both parties' segments are in `states` (by number)."""
        detail: dict[str, Any] = {}

        async def settled() -> bool:
            nonlocal detail
            detail = await self.api(node, f"/api/sessions/{session_id}")
            return segments_settled(detail["recordings"], 2, states)

        await eventually(settled, timeout=60)
        return detail

    async def close(self) -> None:
        for party in self.parties:
            await party.close()
        for process in self.recorders.values():
            if process.poll() is None:
                process.kill()
            process.wait()
        await super().close()


async def _keep_alive(peer: Peer) -> None:
    """Ping like a real client, so a long scenario is not closed as idle."""
    while not peer.ws.closed:
        await asyncio.sleep(10)
        try:
            await peer.send({"type": "ping"})
        except (ConnectionError, RuntimeError):
            return
