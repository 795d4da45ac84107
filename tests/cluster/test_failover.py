"""Losing a node (kill -9), draining one (SIGTERM) and losing Redis for a moment."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.cluster import keys
from tests.cluster.procs import Cluster, Node, free_port
from tests.helpers import Peer

WAIT_S = 30.0


async def session_state(cluster: Cluster, call_id: str, want: str,
                        timeout: float = WAIT_S) -> str:
    """Poll the shared log until the call's session reaches `want` (or time runs out)."""
    db = await cluster.provision()
    deadline = time.monotonic() + timeout
    state = "missing"
    while time.monotonic() < deadline:
        sessions, _ = await db.list_sessions(limit=100)
        state = next((s.state for s in sessions if s.call_id == call_id), "missing")
        if state == want:
            break
        await asyncio.sleep(0.2)
    return state


async def queued(peer: Peer, queue: str) -> dict[str, Any]:
    await peer.send({"type": "call.request", "queue": queue})
    return await peer.recv("call.queued")


async def test_kill_9_of_a_node_follows_the_rules(cluster: Cluster) -> None:
    cluster.ring_s = 30.0
    a, b, c = await cluster.start("a", "b", "c")
    ringer = await cluster.ready(c, await cluster.specialist("ringer", {"tax": 1}))
    talker = await cluster.ready(c, await cluster.specialist("talker", {"registration": 1}))
    backup = await cluster.connect(a, await cluster.specialist("backup", {"tax": 1}))

    in_call = await cluster.connect(a, await cluster.terminal("T1"))
    q1 = await queued(in_call, "registration")
    await talker.recv("call.offered", call_id=q1["call_id"])
    await talker.send({"type": "call.accept", "call_id": q1["call_id"]})
    await in_call.recv("call.connected")
    ringing = await cluster.connect(a, await cluster.terminal("T2"))
    q2 = await queued(ringing, "tax")
    await ringer.recv("call.offered", call_id=q2["call_id"])
    token3 = await cluster.terminal("T3")
    mover = await cluster.connect(c, token3)
    q3 = await queued(mover, "tax")
    assert q3["position"] == 2
    lost = await cluster.connect(c, await cluster.terminal("T4"))
    q4 = await queued(lost, "registration")

    cluster.kill(c)
    moved = await cluster.connect(b, token3, resume=mover.welcome["resume"])
    assert moved.welcome["resumed"] is True
    again = await moved.recv("call.queued", call_id=q3["call_id"])
    assert again["position"] == 2

    requeued = await in_call.recv("call.requeued", timeout=WAIT_S)
    assert requeued["call_id"] == q1["call_id"] and requeued["position"] == 1
    await backup.send({"type": "agent.status", "status": "available"})
    offered = await backup.recv("call.offered", timeout=WAIT_S)
    assert offered["call_id"] == q2["call_id"], "the withdrawn call is first in line"
    assert await session_state(cluster, q4["call_id"], "abandoned") == "abandoned"
    await backup.send({"type": "call.accept", "call_id": q2["call_id"]})
    await ringing.recv("call.connected")
    assert (await moved.recv("call.position", timeout=WAIT_S, position=1))["position"] == 1


async def test_sigterm_drains_and_timers_survive(cluster: Cluster) -> None:
    cluster.ring_s, cluster.grace_s = 3.0, 15.0
    a, b = await cluster.start("a", "b")
    specialist = await cluster.ready(a, await cluster.specialist("li", {"tax": 1}))
    token = await cluster.terminal("T1")
    terminal = await cluster.connect(b, token)
    q = await queued(terminal, "tax")
    await specialist.recv("call.offered", call_id=q["call_id"])

    b.proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(WAIT_S):
        while (await terminal.ws.receive()).type == aiohttp.WSMsgType.TEXT:
            pass  # messages queued before the close
    assert terminal.ws.close_code == keys.DRAIN_CLOSE_CODE
    assert await asyncio.get_running_loop().run_in_executor(None, b.proc.wait, 20) == 0
    back = await cluster.connect(a, token, resume=terminal.welcome["resume"])
    assert (await back.recv("call.queued", call_id=q["call_id"]))["resumed"] is True

    withdrawn = await specialist.recv("call.withdrawn", call_id=q["call_id"], timeout=WAIT_S)
    assert withdrawn["reason"] == "timeout", "the ring timer set by the drained node fired"
    await specialist.recv("call.offered", call_id=q["call_id"], timeout=WAIT_S)
    await specialist.send({"type": "call.accept", "call_id": q["call_id"]})
    connected = await back.recv("call.connected")
    await back.send({"type": "chat.send", "call_id": q["call_id"], "text": "still here"})
    assert (await specialist.recv("chat.message"))["text"] == "still here"
    assert connected["session_id"] == q.get("session_id", connected["session_id"])


class OwnRedis:
    """A redis-server of one test's own: it is stopped mid-test, which must not touch the
    Redis that tests running beside this one share. Append-only file on, fsync always,
    as a deployment that must survive a Redis restart runs it."""

    def __init__(self, directory: Path, options: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.options = options  # more of redis-server's options
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        """Start the process; `start` also waits until it answers (its data loaded)."""
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory),
             *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    async def start(self) -> None:
        self.launch()
        client = Redis.from_url(self.url)
        try:
            for _ in range(100):
                try:
                    await client.ping()
                    return
                except (OSError, RedisError):
                    await asyncio.sleep(0.1)
            pytest.fail(f"redis-server on port {self.port} did not start")
        finally:
            await client.aclose()

    def stop(self) -> None:
        """Shut down as an operator's restart does (SIGTERM: the AOF is complete)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    async def cut(self, seconds: float) -> None:
        """Kill every connection the nodes hold, then freeze Redis (SIGSTOP) for a while:
        unreachable, with its state intact when it comes back (SIGCONT)."""
        assert self.proc is not None
        client = Redis.from_url(self.url, decode_responses=True)
        for entry in await client.client_list():
            if entry.get("name"):
                await client.execute_command(  # type: ignore[no-untyped-call]
                    "CLIENT", "KILL", "ID", entry["id"])
        await client.aclose()
        self.proc.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.proc.send_signal(signal.SIGCONT)

    async def restart(self, down_s: float) -> None:
        """Stop the server, leave it down for `down_s`, start it again on the same port."""
        self.stop()
        await asyncio.sleep(down_s)
        await self.start()


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        server.stop()


def degraded_then_ok(seen: list[str]) -> bool:
    """The node's health said `degraded`, then `ok` again."""
    return "degraded" in seen and "ok" in seen[seen.index("degraded"):]


async def watch_health(cluster: Cluster, node: Node, seen: list[str], stop: asyncio.Event
                       ) -> None:
    while not stop.is_set():
        seen.append(await cluster.health(node))
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("outage", ["frozen", "restarted"])
async def test_redis_lost_for_a_moment(
    tmp_path: Path, pg_url: str, key_prefix: str, own_redis: OwnRedis, outage: str
) -> None:
    """Every connection cut and Redis frozen for 3 s, or Redis shut down and started again
    3 s later: the nodes say so and recover, and what was queued before is intact."""
    cluster = Cluster(tmp_path, pg_url, key_prefix, redis_url=own_redis.url)
    try:
        a, b = await cluster.start("a", "b")
        specialist = await cluster.connect(b, await cluster.specialist("li", {"tax": 1}))
        terminal = await cluster.connect(a, await cluster.terminal("T1"))
        q = await queued(terminal, "tax")

        seen: list[str] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_health(cluster, a, seen, stop))
        if outage == "frozen":
            await own_redis.cut(3.0)
        else:
            await own_redis.restart(3.0)
        async with asyncio.timeout(WAIT_S):
            while not degraded_then_ok(seen):
                await asyncio.sleep(0.1)
        stop.set()
        await watcher
        await cluster.wait_health(b, "ok")
        assert "redis unreachable" in a.output() and "reachable again" in a.output()
        await carry_on(specialist, terminal, q["call_id"])
    finally:
        await cluster.close()


async def carry_on(specialist: Peer, terminal: Peer, call_id: str) -> None:
    """The call queued before the outage is offered, answered, and its chat flows."""
    await specialist.send({"type": "agent.status", "status": "available"})
    offered = await specialist.recv("call.offered", timeout=WAIT_S)
    assert offered["call_id"] == call_id, "the call queued before the loss is intact"
    await specialist.send({"type": "call.accept", "call_id": call_id, "offer": offered["offer"]})
    await terminal.recv("call.connected", timeout=WAIT_S)
    await terminal.send({"type": "chat.send", "call_id": call_id, "text": "ok?"})
    assert (await specialist.recv("chat.message", timeout=20))["text"] == "ok?"
