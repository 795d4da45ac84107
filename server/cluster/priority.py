"""Connections of its own for a dead node's takeover: it does not queue behind a hello storm.

A killed node's 1,000-1,500 kiosks reconnect to the survivor within half a second, seconds
before it fences the dead node; each hello makes a handful of Redis round trips, and each
of those waits for one of the pool's `keys.POOL_MAX_CONNECTIONS`. The takeover's first
stages (the dead recorder out of the pool, the answers it never logged) waited behind
them too: fence -> over went from 0.5 s to 2.5-6.8 s, and all that while new calls were
still given the dead recorder. Work run inside `takeover_first()` (and the tasks it starts)
takes its connections from a small reserved pool instead, named `<client name>:takeover`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool
from redis.asyncio.connection import AbstractConnection

RESERVED = 4  # connections set aside per client: the takeover runs 16 principals at once,
# each a round trip at a time that takes well under a millisecond on Redis
_TAKE: Callable[[BlockingConnectionPool], Awaitable[AbstractConnection]] = (
    BlockingConnectionPool.get_connection)  # redis-py's, untyped (its arguments deprecated)
_FIRST: contextvars.ContextVar[bool] = contextvars.ContextVar("takeover_first", default=False)


@contextmanager
def takeover_first() -> Iterator[None]:
    """Redis commands made in this block, and in tasks created in it, use reserved
    connections."""
    token = _FIRST.set(True)
    try:
        yield
    finally:
        _FIRST.reset(token)


class PriorityPool(BlockingConnectionPool):
    """A blocking pool with `reserved` more connections only `takeover_first` work uses."""

    def __init__(self, *args: Any, reserved: int = RESERVED, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        mine = dict(self.connection_kwargs)
        if mine.get("client_name"):
            mine["client_name"] = f"{mine['client_name']}:takeover"
        self.reserved = BlockingConnectionPool(
            max_connections=reserved, timeout=self.timeout,
            connection_class=self.connection_class, **mine)
        self._lent: set[AbstractConnection] = set()

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        del args, kwargs  # deprecated by redis-py, and never passed since 5.3
        if not _FIRST.get():
            return await _TAKE(self)
        connection = await _TAKE(self.reserved)
        self._lent.add(connection)
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        if connection in self._lent:
            self._lent.discard(connection)
            await self.reserved.release(connection)
        else:
            await super().release(connection)

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await self.reserved.disconnect(inuse_connections)
        await super().disconnect(inuse_connections)

    async def aclose(self) -> None:
        await self.reserved.aclose()
        await super().aclose()
