"""A call request that a node logs `queued` for just as the others take it for dead:
its enqueue is refused (`fenced`), and the session is closed `rejected` in the log, not
left waiting there with nobody to settle it (the overload day's 38 sessions queued in the
log whose kiosks never heard of them: requested on a node in the second before its fence).

Redis routing and the session log are real; the fence lands as the `queued` commits, as
a survivor's would while the append ran.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster import keys
from server.cluster.router import RedisRouter
from server.storage.db import Database
from signaling import messages as m
from signaling.errors import FENCED, Refused
from signaling.events import LogEvent
from signaling.link import SingleNode
from tests.switchboard.conftest import ALICE, KIOSK, QUEUES, Desk, make_desk

STALLED = "stalled.1"


class Clustered(SingleNode):
    """A node with others beside it: `queued` is logged before the enqueue."""

    alone = False


class FencedAsItLogs:
    """The real session log; the others fence this node as a `queued` commits."""

    def __init__(self, db: Database, redis: Redis, fence: str) -> None:
        self.db, self.redis, self.fence = db, redis, fence

    async def append(self, events: Sequence[LogEvent]) -> None:
        await self.db.append(events)
        if any(e.type == "queued" for e in events):
            await self.redis.set(self.fence, "survivor.1", ex=keys.FENCE_TTL_S)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


@pytest.fixture
async def stalled(database: Database, redis: Redis, key_prefix: str) -> AsyncIterator[Desk]:
    router = RedisRouter(redis, key_prefix, QUEUES, instance=STALLED)
    await router.start()
    async for desk in make_desk(database, router=router):
        log = FencedAsItLogs(database, redis, keys.fence(key_prefix, STALLED))
        yield desk.board_of(dataclasses.replace(
            desk.s, session_log=log, link=Clustered(router, desk.s.bus)))


async def test_a_request_logged_as_the_node_is_fenced_is_closed_rejected(
        stalled: Desk, redis: Redis, key_prefix: str) -> None:
    desk = stalled
    await redis.delete(keys.fence(key_prefix, STALLED))
    await desk.connect(ALICE)  # signed in (away): the queue takes requests
    await desk.connect(KIOSK)

    with pytest.raises(Refused) as refused:
        await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    assert refused.value.code == FENCED

    sessions, _ = await desk.db.list_sessions(limit=10)
    assert [(s.terminal_id, s.state) for s in sessions] == [(KIOSK.id, "rejected")]
    session = await desk.db.get_session(sessions[0].id)
    assert session is not None
    assert [(e.type, e.data.get("reason")) for e in session.events][-1] == (
        "rejected", FENCED)
