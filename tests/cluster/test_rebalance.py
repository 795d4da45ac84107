"""Connection rebalancing between two real `vwin serve` nodes on one Redis.

Kiosks all connected to one node while the other is up (as after a restart): the loaded
node closes idle kiosks' sockets with 1012 (`rebalance`), a few a round, until it holds
its fair share within the tolerance; each kiosk reconnects to the other node (the load
balancer) and resumes. A queued terminal, a terminal in a connected call and a
specialist are never moved. A balanced cluster and a disabled node move nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.cluster.procs import Cluster, Node
from tests.helpers import Peer, eventually

INTERVAL_S = 0.5
TOLERANCE = 0.1
KIOSKS = 200  # a fair share of 100: its tolerance (10) is over the margin (10 sockets)
MOVE_WAIT_S = 120.0  # 100 to move at 5 % a round of 0.5 s: about 10 s on a quiet machine
ROUNDS_SEEN = 6  # rounds every node made while nobody may be moved


class RebalancingCluster(Cluster):
    """Nodes that rebalance every `INTERVAL_S` (a node named in `disabled`: never)."""

    def __init__(self, tmp: Path, pg_url: str, prefix: str, disabled: frozenset[str]) -> None:
        super().__init__(tmp, pg_url, prefix)
        self.disabled = disabled

    def config(self, name: str, port: int) -> Path:
        path = super().config(name, port)
        interval = 0 if name in self.disabled else INTERVAL_S
        text = path.read_text().replace(
            f'key_prefix = "{self.prefix}"\n',
            f'key_prefix = "{self.prefix}"\nrebalance_interval_s = {interval}\n'
            f"rebalance_tolerance = {TOLERANCE}\n")
        path.write_text(text + "\n[recording]\nenabled = false\n")
        return path


class Kiosk:
    """An idle kiosk: closed with 1012 it reconnects at once to the other node with its
    resume token, as a kiosk behind the load balancer does."""

    def __init__(self, cluster: Cluster, token: str, peer: Peer, node: Node, other: Node
                 ) -> None:
        self.cluster, self.token, self.peer = cluster, token, peer
        self.node, self.other = node, other
        self.closes: list[tuple[int | None, str]] = []
        self.welcomes = [peer.welcome]
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            frame = await self.peer.ws.receive()
            if frame.type == aiohttp.WSMsgType.TEXT:
                continue  # queue figures
            reason = frame.extra if frame.type == aiohttp.WSMsgType.CLOSE else ""
            self.closes.append((self.peer.ws.close_code, str(reason or "")))
            if self.peer.ws.close_code != 1012:
                return
            self.node, self.other = self.other, self.node
            self.peer = await self.cluster.connect(self.node, self.token,
                                                   resume=self.peer.welcome["resume"])
            self.welcomes.append(self.peer.welcome)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        await self.peer.close()


async def metric(cluster: Cluster, node: Node, name: str) -> float:
    """The sum of a metric's samples on one node's `/metrics`."""
    async with cluster.http.get(node.url + "/metrics") as resp:
        text = await resp.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


async def sockets(cluster: Cluster, node: Node) -> float:
    return await metric(cluster, node, "vwin_websocket_connections")


async def kiosks(cluster: Cluster, node: Node, other: Node, first: int, count: int
                 ) -> list[Kiosk]:
    made = []
    for i in range(first, first + count):
        token = await cluster.terminal(f"K{i}")
        made.append(Kiosk(cluster, token, await cluster.connect(node, token), node, other))
    return made


async def rounds_pass(cluster: Cluster, node: Node, count: int) -> None:
    """Until `node` has compared its sockets with the others' `count` more times."""
    start = await metric(cluster, node, "vwin_rebalance_rounds_total")

    async def done() -> bool:
        return await metric(cluster, node, "vwin_rebalance_rounds_total") >= start + count

    await eventually(done, timeout=60)


@pytest.fixture
async def rebalancing(tmp_path: Path, pg_url: str, key_prefix: str, redis: Redis,
                      request: pytest.FixtureRequest) -> AsyncIterator[RebalancingCluster]:
    del redis
    made = RebalancingCluster(tmp_path, pg_url, key_prefix,
                              frozenset(getattr(request, "param", ())))
    try:
        yield made
    finally:
        await made.close()


@pytest.mark.timeout(400)
async def test_a_loaded_node_sheds_idle_kiosks_to_the_other(
        rebalancing: RebalancingCluster) -> None:
    cluster = rebalancing
    a, b = await cluster.start("a", "b")
    desk = await cluster.ready(a, await cluster.specialist("li", {"tax": 1}))
    talking = await cluster.connect(a, await cluster.terminal("T-call"))
    await talking.send({"type": "call.request", "queue": "tax"})
    offered = await desk.recv("call.offered")
    await desk.send({"type": "call.accept", "call_id": offered["call_id"]})
    await talking.recv("call.connected")
    away = await cluster.connect(b, await cluster.specialist("wu", {"registration": 1}))
    waiting = await cluster.connect(a, await cluster.terminal("T-queue"))
    await waiting.send({"type": "call.request", "queue": "registration"})  # wu is away
    queued = await waiting.recv("call.queued")
    idle = await kiosks(cluster, a, b, 0, KIOSKS)

    async def balanced() -> bool:
        on_a, on_b = await sockets(cluster, a), await sockets(cluster, b)
        return on_a <= (on_a + on_b) / 2 * (1 + TOLERANCE)

    try:
        await eventually(balanced, timeout=MOVE_WAIT_S)
        moved = [k for k in idle if k.closes]
        print(f"{len(moved)} kiosks moved; sockets a {await sockets(cluster, a)}, "
              f"b {await sockets(cluster, b)}")
        assert moved
        for kiosk in moved:
            assert kiosk.closes == [(1012, "rebalance")]  # once, by the drain's code
            assert kiosk.node is b and kiosk.welcomes[-1]["resumed"] is True

        async def all_counted() -> bool:  # a kiosk hears its close a moment after the count
            counted = await metric(cluster, a, "vwin_connections_rebalanced_total")
            return counted == len([k for k in idle if k.closes])
        await eventually(all_counted)
        assert await metric(cluster, b, "vwin_connections_rebalanced_total") == 0
        for peer in (desk, talking, waiting):  # never moved
            assert not peer.ws.closed
        # The queued terminal kept its place; the call in progress still runs.
        await away.send({"type": "agent.status", "status": "available"})
        assert (await away.recv("call.offered"))["call_id"] == queued["call_id"]
        await desk.send({"type": "call.hangup", "call_id": offered["call_id"]})
        await talking.recv("call.ended", call_id=offered["call_id"])
    finally:
        for kiosk in idle:
            await kiosk.close()


@pytest.mark.timeout(300)
async def test_a_balanced_cluster_moves_nobody(rebalancing: RebalancingCluster) -> None:
    """Once split evenly, nobody moves. The kiosks connect to the two nodes by turns (60
    to one, then 60 to the other took longer than the settling rounds on a busy machine:
    the first node rightly shed a few while the second had fewer), and what the set-up
    moved, if anything, is not counted."""
    cluster = rebalancing
    a, b = await cluster.start("a", "b")
    idle: list[Kiosk] = []
    for i in range(60):
        idle += await kiosks(cluster, a, b, i, 1) + await kiosks(cluster, b, a, 60 + i, 1)
    try:
        await asyncio.gather(rounds_pass(cluster, a, 2), rounds_pass(cluster, b, 2))
        moved = [len(k.closes) for k in idle]
        counted = [await metric(cluster, node, "vwin_connections_rebalanced_total")
                   for node in (a, b)]
        await asyncio.gather(rounds_pass(cluster, a, ROUNDS_SEEN),
                             rounds_pass(cluster, b, ROUNDS_SEEN))
        assert [len(k.closes) for k in idle] == moved
        assert [await metric(cluster, node, "vwin_connections_rebalanced_total")
                for node in (a, b)] == counted
    finally:
        for kiosk in idle:
            await kiosk.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("rebalancing", [("a",)], indirect=True)
async def test_a_node_with_rebalancing_disabled_moves_nobody(
        rebalancing: RebalancingCluster) -> None:
    cluster = rebalancing
    a, b = await cluster.start("a", "b")
    idle = await kiosks(cluster, a, b, 0, 60)
    try:
        await rounds_pass(cluster, b, ROUNDS_SEEN)  # b compares: a holds every socket
        assert [k.closes for k in idle if k.closes] == []
        assert await metric(cluster, a, "vwin_rebalance_rounds_total") == 0
        assert await metric(cluster, a, "vwin_connections_rebalanced_total") == 0
    finally:
        for kiosk in idle:
            await kiosk.close()

