"""The order of a dead node's takeover (`ClusterBackends.dead`): its recorders out of the
pool and their sessions handed on first, then the answers it may not have logged, then
everyone else, at most `TAKEOVER_IN_FLIGHT` at once.

Real `vwin serve` nodes (Redis, PostgreSQL); node b holds a recorder recording two calls,
two specialists whose answers it made in Redis but never logged (killed between the two),
and many kiosks; b is killed. What the survivor did, and in which order, is read from Redis
itself: `MONITOR` lists every command Redis ran, in the order it ran them, those of the
routing scripts included (the pool's `ZREM` of the recorder, a session's `SADD` to another
recorder's set, a presence's `HSET ... connected 0`). The goal-size day's unrecorded call:
a survivor that logged the answers one by one before the recorders had not taken the
killed node's recorder out when it came back 4 s later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from server.auth import token_hash
from server.cluster import keys
from server.cluster.backends import TAKEOVER_IN_FLIGHT
from server.cluster.router import RedisRouter
from server.recording.embedded import new_recorder_token
from signaling.model import QueueConfig
from tests.cluster.procs import Node, RecordingCluster
from tests.helpers import Peer

pytestmark = pytest.mark.slow
KIOSKS = 120  # the rest: many more than TAKEOVER_IN_FLIGHT
QUEUES = [QueueConfig(id="tax", name="Tax"), QueueConfig(id="registration", name="Reg")]


@pytest.fixture
async def cluster(tmp_path: Path, pg_url: str, key_prefix: str,
                  redis: Redis) -> AsyncIterator[RecordingCluster]:
    del redis  # flushes this test's keys afterwards
    made = RecordingCluster(tmp_path, pg_url, key_prefix)
    try:
        yield made
    finally:
        await made.close()


class Monitor:
    """Every command Redis runs on this test's keys, in its order, from a `MONITOR`."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix
        self.commands: list[str] = []
        self.clients: list[str] = []  # who ran each ("ip:port"; "lua": the script before)
        self._end = f"{prefix}:end-of-watch"
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Monitor:
        self._task = asyncio.create_task(self._watch())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def _watch(self) -> None:
        async with self.redis.monitor() as monitor:
            self._ready.set()
            async for seen in monitor.listen():
                command = seen["command"]
                if self._end in command:
                    return
                if self.prefix in command:
                    self.commands.append(command)
                    self.clients.append(f"{seen['client_address']}:{seen['client_port']}"
                                        if seen["client_address"] != "lua" else "lua")

    async def __aexit__(self, *exc: object) -> None:
        """Until Redis has shown everything it ran before this point."""
        await self.redis.get(self._end)
        assert self._task is not None
        await asyncio.wait_for(self._task, 60)

    def first(self, command: str) -> int:
        return self.commands.index(command)

    def where(self, commands: set[str]) -> list[int]:
        return [n for n, c in enumerate(self.commands) if c in commands]

    def caller(self, n: int) -> str:
        """The address of the client whose command (or script) ran the `n`th command."""
        return next(c for c in reversed(self.clients[:n + 1]) if c != "lua")


async def _recorder(cluster: RecordingCluster, node: Node, name: str) -> Peer:
    """A recorder's signalling socket (no media: the takeover needs none), capacity 10."""
    db = await cluster.provision()
    token = new_recorder_token()
    await db.add_recorder(name, token_hash(token))
    ws = await cluster.http.ws_connect(node.url + "/ws")
    peer = Peer(ws)
    await peer.send({"type": "hello", "token": token, "capacity": 10})
    peer.welcome = await peer.recv("welcome")
    await cluster.wait_recorder(node, name)
    return peer


async def _call(cluster: RecordingCluster, node: Node, kiosk: str, desk: Peer, queue: str
                ) -> tuple[Peer, dict[str, Any]]:
    """A kiosk on `node` whose call rings `desk`: the kiosk and the offer."""
    terminal = await cluster.connect(node, await cluster.terminal(kiosk))
    await terminal.send({"type": "call.request", "queue": queue})
    queued = await terminal.recv("call.queued")
    return terminal, await desk.recv("call.offered", call_id=queued["call_id"])


async def _instance(redis: Redis, prefix: str, node_id: str) -> str:
    return next(str(i) for i, n in (await redis.hgetall(keys.nodes(prefix))).items()
                if n == node_id)


async def test_a_dead_nodes_recorder_goes_first_its_answers_next_then_16_at_a_time(
        cluster: RecordingCluster, redis: Redis, key_prefix: str) -> None:
    a, b = await cluster.start("a", "b")
    rec1 = await _recorder(cluster, b, "rec-1")
    recorded = []
    for n in (1, 2):  # two calls recorded by rec-1 (the only recorder yet)
        desk = await cluster.ready(a, await cluster.specialist(f"s{n}", {"tax": 1}))
        kiosk, offer = await _call(cluster, a, f"R{n}", desk, "tax")
        await desk.send({"type": "call.accept", "call_id": offer["call_id"]})
        await kiosk.recv("call.connected")
        assert (await rec1.recv("record.start"))["call_id"] == offer["call_id"]
        recorded.append(offer["call_id"])
    rec2 = await _recorder(cluster, a, "rec-2")
    rest = {f"terminal:K{n:03d}" for n in range(KIOSKS)}
    for principal in sorted(rest):
        await cluster.connect(b, await cluster.terminal(principal.split(":")[1]))
    offers = []
    for n in (1, 2):  # calls ringing specialists on b (for 5 s), whose answers b won't log
        desk = await cluster.ready(b, await cluster.specialist(f"d{n}", {"registration": 1}))
        kiosk, offer = await _call(cluster, a, f"U{n}", desk, "registration")
        offers.append((kiosk, offer, f"d{n}"))
    instance = await _instance(redis, key_prefix, "b")
    held = await redis.scard(keys.node_principals(key_prefix, instance))
    assert held == KIOSKS + 3  # the kiosks, two specialists, rec-1

    async with Monitor(redis, key_prefix) as seen:
        cluster.kill(b)
        dead = RedisRouter(redis, key_prefix, QUEUES, instance=instance)
        for _, offer, agent in offers:  # b's accepts, made as it died: never logged
            await dead.accept(offer["call_id"], agent, time.time(), offer["offer"])
        async with asyncio.timeout(60):
            while await redis.get(keys.fence(key_prefix, instance)) != "over":
                await asyncio.sleep(0.05)

    out_of_pool = seen.first(f"ZREM {key_prefix}:rc:live rec-1")
    handed = seen.where({f"SADD {key_prefix}:rc:held:rec-2 {c}" for c in recorded})
    answered = seen.where({f"SADD {key_prefix}:rc:held:rec-2 {o['call_id']}"
                           for _, o, _ in offers})
    disconnected = seen.where({f"HSET {key_prefix}:p:{p} connected 0" for p in rest})
    assert len(handed) == 2 and len(answered) == 2 and len(disconnected) == KIOSKS
    names = {c["addr"]: c["name"] for c in await redis.client_list()}
    assert names[seen.caller(out_of_pool)].endswith(":takeover"), (
        "the dead recorder left the pool over a connection a hello storm holds")
    assert names[seen.caller(min(answered))].endswith(":takeover")
    assert out_of_pool < min(answered), "an answer could still be given the dead recorder"
    assert max(handed) < min(disconnected), "the recorder's sessions waited for the rest"
    assert max(answered) < min(disconnected), "the rest went before the unlogged answers"
    assert not [c for c in seen.commands[out_of_pool:]
                if c.startswith(f"SADD {key_prefix}:rc:held:rec-1 ")], "a call given to rec-1"

    looked_up = {f"HGETALL {key_prefix}:p:{p}": p for p in rest}
    gone = {f"HSET {key_prefix}:p:{p} connected 0": p for p in rest}
    in_flight, most = set(), 0
    for command in seen.commands:
        if command in looked_up:
            in_flight.add(looked_up[command])
            most = max(most, len(in_flight))
        elif command in gone:
            in_flight.discard(gone[command])
    assert 1 < most <= TAKEOVER_IN_FLIGHT, most

    for call_id in recorded:  # what the parties and the new recorder see
        assert (await rec2.recv("record.start", call_id=call_id))["segment"] == 2
    for kiosk, offer, agent in offers:
        connected = await kiosk.recv("call.connected", call_id=offer["call_id"])
        assert f"specialist:{agent}" in {p["id"] for p in connected["participants"]}
        detail = await cluster.api(a, f"/api/sessions/{connected['session_id']}")
        assert [e["type"] for e in detail["events"]].count("answered") == 1
