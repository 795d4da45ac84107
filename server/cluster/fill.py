"""What a node whose subscription was lost reads back: the numbered messages published
for its connections meanwhile, kept briefly in each principal's list (`keys.fill`).

A restarted Redis takes subscriptions while it still reads its append-only file back and
answers reads only after (5.35 s for a 64 MB file on the goal-size day): the read waits
for it. Given up at once, the messages in the lists were lost with the subscription.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError

from . import keys

log = logging.getLogger(__name__)

POLL_MAX_S = 0.5  # a Redis loading its data is asked again at most this far apart
Missed = list[tuple[str, int, int, list[bytes]]]
"""(principal, the number its line waits for, its counter, its list's entries)."""


async def read_missed(redis: Redis, prefix: str, principals: list[str],
                      next_of: Callable[[str], int | None]) -> Missed | None:
    """`missed`, once Redis has loaded its data (within `keys.FILL_TTL_S`, after which the
    lists are gone anyway); None: unknown."""
    deadline = time.monotonic() + keys.FILL_TTL_S
    delay, dropped_seen = keys.RECONNECT_MIN_S, False
    while True:
        try:
            return await missed(redis, prefix, principals, next_of)
        except BusyLoadingError as exc:
            if time.monotonic() + delay > deadline:
                log.warning("bus: the numbered messages missed are unknown (%s)", exc)
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, POLL_MAX_S)
        except RedisConnectionError as exc:
            if dropped_seen:  # a pooled connection Redis had dropped: tried again once
                log.warning("bus: the numbered messages missed are unknown (%s)", exc)
                return None
            dropped_seen = True
        except (RedisError, OSError) as exc:
            log.warning("bus: the numbered messages missed are unknown (%s)", exc)
            return None


async def missed(redis: Redis, prefix: str, principals: list[str],
                 next_of: Callable[[str], int | None]) -> Missed:
    """Each connection whose counter in Redis is at or past the number its line waits for,
    with its list."""
    if not principals:
        return []
    counters = await redis.hmget(keys.sequences(prefix), principals)
    wanted: list[tuple[str, int, int]] = []
    for principal, counter in zip(principals, counters, strict=True):
        next_seq = next_of(principal)
        if next_seq is not None and counter is not None and int(counter) >= next_seq:
            wanted.append((principal, next_seq, int(counter)))
    if not wanted:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for principal, _, _ in wanted:
            pipe.lrange(keys.fill(prefix, principal), 0, -1)
        lists = await pipe.execute()
    return [(p, n, c, entries) for (p, n, c), entries in zip(wanted, lists, strict=True)]
