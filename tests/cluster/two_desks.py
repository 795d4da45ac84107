"""Two nodes' switchboards on one Redis and one session log, as test fixtures: `survivor`
and `dead` (the node that is killed: its steps run, their outboxes never committed). They are
the cluster tests' (`conftest.py`)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from server.storage.db import Database
from signaling.switchboard import Switchboard
from tests.switchboard.conftest import QUEUES, Desk, make_desk


async def node_desk(database: Database, redis: Redis, key_prefix: str, instance: str
                    ) -> AsyncIterator[Desk]:
    """A node `instance`'s desk on the real Redis router, phone hand-offs on."""
    router = RedisRouter(redis, key_prefix, QUEUES, instance=instance)
    await router.start()
    async for made in make_desk(database, router=router):
        board = Switchboard(dataclasses.replace(made.board.services, handoffs=database))
        yield dataclasses.replace(made, board=board)


@pytest.fixture
async def survivor(database: Database, redis: Redis, key_prefix: str) -> AsyncIterator[Desk]:
    async for made in node_desk(database, redis, key_prefix, "survivor.1"):
        yield made


@pytest.fixture
async def dead(database: Database, redis: Redis, key_prefix: str) -> AsyncIterator[Desk]:
    async for made in node_desk(database, redis, key_prefix, "dead.1"):
        yield made
