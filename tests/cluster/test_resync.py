"""A connection that missed a numbered message is made to resume (`RedisBus._resync`).

The faulted bench day's `c_1de6e8dd83e617a5`: the answer was decided on one node as Redis
restarted, its publish lost, and the kiosk on the other node never heard `call.connected`:
nothing numbered came after it to open a gap. Now the node that subscribes again reads
its connections' counters, finds the kiosk's past its line, and closes the kiosk's socket
as a move (1012, `resync`): the kiosk resumes and hears its call. Real `vwin serve`
processes; only node b's subscription is cut (`CLIENT KILL` of its own connection: the
shared Redis serves other tests meanwhile).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from server.cluster import keys
from server.cluster.router import RedisRouter
from tests.cluster.procs import Cluster, Node

WAIT_S = 60.0


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of the process's sockets (its inodes in /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            if cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


async def cut_subscription(redis: Redis, node: Node) -> int:
    """Close the node's subscribed connection from Redis's side; the clients killed."""
    ports = local_ports(node.proc.pid)
    killed = 0
    for client in await redis.client_list(_type="pubsub"):
        port = int(re.split(r":", str(client["addr"]))[-1])
        if port in ports:
            killed += await redis.client_kill_filter(_id=client["id"])
    return killed


async def test_a_kiosk_whose_answer_was_never_published_resumes_and_hears_it(
        cluster: Cluster, redis: Redis) -> None:
    a, b = await cluster.start("a", "b")
    specialist = await cluster.ready(a, await cluster.specialist("li", {"tax": 1}))
    token = await cluster.terminal("T1")
    terminal = await cluster.connect(b, token)
    await terminal.send({"type": "call.request", "queue": "tax"})
    call_id = (await terminal.recv("call.queued"))["call_id"]
    offered = await specialist.recv("call.offered", call_id=call_id)
    (heartbeat,) = [key async for key in redis.scan_iter(f"{cluster.prefix}:hb:a.*")]
    router = RedisRouter(redis, cluster.prefix, [], instance=heartbeat.rsplit(":", 1)[1])
    # node a's answer: in routing, the kiosk's number taken, its publish lost
    await router.accept(call_id, "li", time.time(), offered["offer"])
    taken = int(await redis.hget(keys.sequences(cluster.prefix), terminal.me) or 0)
    assert taken > 0
    assert await cut_subscription(redis, b) == 1

    async with asyncio.timeout(WAIT_S):
        frame = await terminal.ws.receive()
        while frame.type == aiohttp.WSMsgType.TEXT:  # anything before the close
            frame = await terminal.ws.receive()
    assert (terminal.ws.close_code, frame.extra) == (keys.DRAIN_CLOSE_CODE, "resync")
    assert "missed messages: closed to resume" in b.output()

    again = await cluster.connect(b, token, resume=terminal.welcome["resume"])
    assert again.welcome["resumed"] is True
    connected = await again.recv("call.connected", call_id=call_id, timeout=WAIT_S)
    assert connected["resumed"] is True
    assert "specialist:li" in [p["id"] for p in connected["participants"]]
