"""A takeover's Redis commands do not queue behind a hello storm (`priority.py`).

A killed node's kiosks all say hello to the survivor at once, seconds before it fences the
dead node: their round trips took every one of the pool's connections, and the takeover's
first stages (the dead recorder out of the recorders' pool, the answers it never logged)
waited behind them for seconds. Here the pool is held by commands that block in Redis
itself (`BLPOP` on an empty list), as the storm held it.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from server.cluster.backends import connect_redis
from server.cluster.priority import takeover_first
from tests.cluster.conftest import REDIS_URL

HELD_S = 3  # how long the blocking commands hold every ordinary connection
CONNECTIONS = 4


async def test_a_takeover_command_is_served_while_every_ordinary_connection_is_held(
        redis: Redis, key_prefix: str) -> None:
    del redis  # flushes this test's keys afterwards
    client = connect_redis(REDIS_URL, f"{key_prefix}:node", connections=CONNECTIONS,
                           reserved=2)
    try:
        empty = f"{key_prefix}:nothing"
        storm = [asyncio.create_task(client.blpop([empty], HELD_S))
                 for _ in range(CONNECTIONS)]
        await asyncio.sleep(0.3)  # every ordinary connection now blocks in Redis
        with pytest.raises(TimeoutError):  # the pool is really held: a hello would wait
            await asyncio.wait_for(client.get(f"{key_prefix}:hello"), 0.5)

        async def takeover() -> None:
            await client.set(f"{key_prefix}:taken", "1")
            async with client.pipeline(transaction=True) as pipe:
                await pipe.get(f"{key_prefix}:taken").execute()

        with takeover_first():  # its own connections; tasks started here inherit them
            await asyncio.wait_for(asyncio.gather(takeover(), takeover()), 0.5)
        assert await asyncio.gather(*storm) == [None] * CONNECTIONS
        names = {c["name"] for c in await client.client_list()}
        assert f"{key_prefix}:node:takeover" in names
    finally:
        await client.aclose()
