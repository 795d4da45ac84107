"""`call.request` waits for routing as few times as it can: on a busy node every round trip
to Redis is a turn of the event loop, and the goal-size day's requests took seconds. Its
checks' reads go together, and the queue's figures for the estimate are read beside the
enqueue. Real Redis router; only the moments of its scripts are noted. A recorded answer
asks the recorder pool once: the assignment checks the call itself."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from server.cluster import keys
from server.cluster.recorders import RedisRecorderPool
from server.cluster.router import RedisRouter
from server.storage.db import Database
from signaling import messages as m
from signaling.recorders import RecordingSetup
from tests.cluster.conftest import REDIS_URL, flush_prefix
from tests.switchboard.conftest import (
    ALICE,
    KIOSK,
    QUEUES,
    Desk,
    make_desk,
    offered_recorded,
)


@pytest.fixture
def storage_backend() -> str:
    """One session log is enough here: SQLite."""
    return "sqlite"


class NotedRouter(RedisRouter):
    """A Redis router that notes when each of its round trips began and ended."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.ticks = itertools.count()
        self.spans: list[tuple[str, int, int]] = []

    async def _noted(self, name: str, work: Any) -> Any:
        start = next(self.ticks)
        try:
            return await work
        finally:
            self.spans.append((name, start, next(self.ticks)))

    async def _run(self, name: str, now: float, *args: Any) -> Any:
        return await self._noted(name, super()._run(name, now, *args))

    async def check_open(self, queue: str) -> str | None:
        result: str | None = await self._noted("check_open", super().check_open(queue))
        return result

    def overlapped(self, a: str, b: str) -> bool:
        return any(s1 < e2 and s2 < e1 for n1, s1, e1 in self.spans if n1 == a
                   for n2, s2, e2 in self.spans if n2 == b)


@pytest.fixture
async def desk(redis: Redis, key_prefix: str, database: Database) -> AsyncIterator[Desk]:
    """One node's switchboard on a real Redis router whose round trips are noted."""
    noted = NotedRouter(redis, key_prefix, QUEUES)
    await noted.start()
    async for made in make_desk(database, router=noted):
        made.s.link.alone = False  # as on a cluster: another node may offer the call
        yield made


async def test_a_request_reads_routing_together(desk: Desk) -> None:
    """On a cluster (a node alone keeps its step unsuspended up to its dispatch:
    `tests/test_concurrency.py` on memory)."""
    router = desk.s.router
    assert isinstance(router, NotedRouter)
    await desk.connect(ALICE)  # logged in, away: the call waits
    kiosk = await desk.connect(KIOSK)
    router.spans.clear()
    await desk.board.handle(KIOSK, m.CallRequest(queue="tax"))
    [queued] = [f for f in kiosk.frames if f["type"] == "call.queued"]
    assert queued["position"] == 1 and queued["estimated_wait_s"] == 300.0
    assert router.overlapped("calls_of_terminal", "check_open")  # the checks' reads
    assert router.overlapped("enqueue", "snapshot")  # the estimate's figures


class CountingRedis(Redis):
    """A Redis client that notes each round trip it makes: a command (a script by the
    name its test gives its SHA) or a pipeline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trips: list[str] = []
        self.scripts: dict[str, str] = {}

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        name = str(args[0]).upper()
        self.trips.append(self.scripts.get(str(args[1]), "script") if name == "EVALSHA"
                          else f"{name} {args[1]}")
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        self.trips.append("pipeline")
        return super().pipeline(transaction, shard_hint)


@pytest.fixture
async def counted(key_prefix: str, database: Database) -> AsyncIterator[
        tuple[Desk, CountingRedis]]:
    """A recorded desk whose router and recorder pool share one counting Redis client."""
    client = CountingRedis.from_url(REDIS_URL, decode_responses=True)
    router = RedisRouter(client, key_prefix, QUEUES)
    await router.start()
    pool = RedisRecorderPool(client, key_prefix)
    client.scripts = {script.sha: f"pool{name}" for name, script in vars(pool).items()
                      if isinstance(script, AsyncScript)}
    try:
        async for made in make_desk(database, router=router,
                                    recording=RecordingSetup(pool=pool)):
            made.s.link.alone = False
            yield made, client
    finally:
        await flush_prefix(client, key_prefix)
        await client.aclose()


async def test_a_recorded_answer_reads_no_call_after_assigning_its_recorder(
        counted: tuple[Desk, CountingRedis], key_prefix: str) -> None:
    """The pool's assignment checks the call is still connected in its session itself
    (`recorders.ASSIGN`): reading the call again after it cost a round trip on every
    recorded answer, on the busiest step of a loaded node."""
    desk, client = counted
    recorder, _, offered = await offered_recorded(desk)
    client.trips.clear()
    await desk.drive(ALICE, m.CallAccept(call_id=offered["call_id"], offer=offered["offer"]))
    assert [f["type"] for f in recorder.frames][-1] == "record.start"
    trips = client.trips
    print(f"round trips of a recorded answer: {len(trips)} {trips}")
    call = keys.call(key_prefix, offered["call_id"])
    assert trips.count("pool_assign") == 1, trips
    assert f"HGETALL {call}" not in trips[trips.index("pool_assign"):], trips  # read again
    assert not [t for t in trips if t.endswith(":rc:of")], trips  # `recorder_of` first
