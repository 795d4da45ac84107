"""Idle kiosks moved between the two nodes of `bench.node_memory` (`--idle`, `--moves`).

On a bench day the restarted node grows while it holds its share of the sockets: kiosks the
other node's rebalancer closed with 1012 (`server/cluster/rebalance.py`) that resume on it,
and kiosks whose network dropped that resume on either node. Here `--idle` kiosks (their own
principals, each at its home screen, hearing the queue figures) start on node A and, while
the lanes play their visits, one at a time is moved to the other node: closed by its node
as the rebalancer does (`close_local` with 1012 and the reason `rebalance`), or every third
time cut like a lost network, then resumed on the other node with its resume token.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import aiohttp
from aiohttp import web

from bench.node_memory import Line
from recorder.heap import HeapTrimmer
from recorder.memwatch import mallinfo_mb, smaps_mb
from server import keys
from server.cluster.keys import DRAIN_CLOSE_CODE
from server.cluster.rebalance import REASON

CUT_EVERY = 3  # every third move is a lost network (no close frame), the others a 1012


class Unread(asyncio.Queue[dict[str, Any]]):
    """An idle kiosk's inbox: the queue figures it hears are not kept (a line's queue,
    never read, grew with every `queue.status` for as long as the kiosk stayed put)."""

    async def put(self, item: dict[str, Any]) -> None:
        del item


class Idle:
    """A kiosk at its home screen, on one node or the other."""

    def __init__(self, http: aiohttp.ClientSession, urls: list[str], token: str,
                 terminal_id: str) -> None:
        self.http, self.urls, self.token = http, urls, token
        self.principal = "terminal:" + terminal_id
        self.line: Line | None = None
        self.at = 0

    async def start(self) -> None:
        self.line = await Line.opened(self.http, self.urls[self.at], self.token)
        self.line.inbox = Unread()

    async def move(self, apps: list[web.Application], cut: bool) -> None:
        """Closed by its node (1012, or the network lost) and resumed on the other one."""
        line = self.line
        assert line is not None
        if cut:
            await line.close(abort=True)
        else:
            apps[self.at][keys.BOARD].services.bus.close_local(self.principal,
                                                              DRAIN_CLOSE_CODE, REASON)
            await asyncio.wait_for(line.reader, 30.0)  # the close frame read
            await line.close()
        self.at = (self.at + 1) % len(self.urls)
        self.line = await Line.opened(self.http, self.urls[self.at], self.token,
                                      line.welcome["resume"])
        self.line.inbox = Unread()

    async def close(self) -> None:
        if self.line is not None:
            await self.line.close()


def held(apps: list[web.Application]) -> str:
    """Sockets and principals attached on each node (nothing left behind by the moves), RSS
    by kind of mapping and glibc's view; with `BENCH_TRIM=1` also after a `malloc_trim`
    (what the node's idle sweeper does each minute: what of the rise it returns)."""
    out = (f"sockets {[len(app[keys.SOCKETS]) for app in apps]}, attached "
           f"{[len(app[keys.BOARD].services.bus.connected()) for app in apps]}; "
           f"RSS {smaps_mb()}, glibc {mallinfo_mb()}")
    if os.environ.get("BENCH_TRIM"):
        HeapTrimmer(0).trim()
        out += f"; trimmed: RSS {smaps_mb()}, glibc {mallinfo_mb()}"
    return out


async def mover(idles: list[Idle], apps: list[web.Application], moves: int,
                rng: random.Random) -> None:
    """`moves` moves, one after another, of kiosks picked at random."""
    for n in range(moves if idles else 0):
        await rng.choice(idles).move(apps, cut=n % CUT_EVERY == 0)
