"""A hello waits for routing as few times as it can: a survivor taking a killed node over
takes every one of its kiosks' hellos at once (`python -m bench.takeover --resume`: 1,500
hellos, each a handful of Redis round trips, p99 over 4 s), and on the goal-size day a
kiosk reconnecting through such a storm missed its whole call. Real Redis router; only its
scripts' runs are counted."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.cluster.presence import NodePresence, RedisPresences
from server.storage.db import Database
from signaling import messages as m
from signaling.identity import Identity, Role
from tests.cluster.test_request_round_trips import NotedRouter
from tests.switchboard.conftest import ALICE, KIOSK, QUEUES, SITE, Desk, make_desk


@pytest.fixture
def storage_backend() -> str:
    """One session log is enough here: SQLite."""
    return "sqlite"


@pytest.fixture
async def desk(redis: Redis, key_prefix: str, database: Database) -> AsyncIterator[Desk]:
    noted = NotedRouter(redis, key_prefix, QUEUES)
    await noted.start()
    async for made in make_desk(database, router=noted):
        made.s.link.alone = False
        yield made


def runs(desk: Desk, name: str) -> int:
    router = desk.s.router
    assert isinstance(router, NotedRouter)
    return [n for n, _, _ in router.spans].count(name)


async def test_a_resumed_kiosk_reads_its_calls_once(desk: Desk) -> None:
    """Once for where its call stands and whether a phone took it over meanwhile."""
    await desk.connect(ALICE)  # logged in, away: the call waits
    await desk.connect(KIOSK)
    await desk.board.handle(KIOSK, m.CallRequest(queue="tax"))
    await desk.board.disconnect(KIOSK, desk.epochs[KIOSK.principal], desk.sinks[KIOSK.principal])
    before = runs(desk, "calls_of_terminal")
    kiosk = await desk.connect(KIOSK, desk.resumes[KIOSK.principal])
    assert [(f["type"], f.get("resumed")) for f in kiosk.frames
            if f["type"] in ("welcome", "call.queued")] == [("welcome", True),
                                                             ("call.queued", True)]
    assert runs(desk, "calls_of_terminal") - before == 1


async def test_hellos_arriving_together_share_the_queues_figures(desk: Desk) -> None:
    """One read for the hellos that asked while one was under way; none older than its
    hello (a call queued just before a hello is in that kiosk's `queue.status`)."""
    kiosks = [Identity(role=Role.TERMINAL, id=f"T{n}", name=f"{n}", site=SITE)
              for n in range(2, 22)]
    sinks = await asyncio.gather(*(desk.connect(k) for k in kiosks))
    assert all("queue.status" in sink.types() for sink in sinks)
    assert runs(desk, "snapshot") < len(kiosks) / 2, runs(desk, "snapshot")

    await desk.connect(ALICE)
    await desk.connect(KIOSK)
    await desk.board.handle(KIOSK, m.CallRequest(queue="tax"))
    late = Identity(role=Role.TERMINAL, id="T99", name="99", site=SITE)
    [status] = [f for f in (await desk.connect(late)).frames if f["type"] == "queue.status"]
    assert {q["id"]: q["waiting"] for q in status["queues"]}["tax"] == 1


class NotedPresences(RedisPresences):
    """Redis presences that count their reads."""

    reads = 0

    async def get(self, principal: str) -> NodePresence | None:
        self.reads += 1
        return await super().get(principal)


async def test_a_hello_reads_no_presence_before_it_connects(desk: Desk, redis: Redis,
                                                            key_prefix: str) -> None:
    """Whether an older connection is replaced is the connect's answer: a kiosk that says
    hello again without its resume token (reset) still lets its queued call go."""
    presences = NotedPresences(redis, key_prefix, "n.1")
    desk = desk.board_of(dataclasses.replace(desk.s, presences=presences))
    await desk.connect(ALICE)
    await desk.connect(KIOSK)
    await desk.board.handle(KIOSK, m.CallRequest(queue="tax"))
    assert await desk.s.router.calls_of_terminal(KIOSK.id)
    kiosk = await desk.connect(KIOSK)  # no resume token: a new presence
    assert [f.get("resumed") for f in kiosk.frames if f["type"] == "welcome"] == [False]
    assert await desk.s.router.calls_of_terminal(KIOSK.id) == []
    resumed = await desk.connect(KIOSK, desk.resumes[KIOSK.principal])
    assert [f.get("resumed") for f in resumed.frames if f["type"] == "welcome"] == [True]
    assert presences.reads == 0
