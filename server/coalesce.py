"""Concurrent look-ups that share one query: a reconnect storm pays a round trip per batch.

While one query is in flight, the keys asked for meanwhile wait and go together in the
next one. Nothing is cached: every answer is read after it was asked for, so a token
revoked a moment ago is refused at once, as with one query per look-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalescer(Generic[T]):
    """`await get(key)`: the value `fetch` finds for `key` in a batch, or None."""

    def __init__(self, fetch: Callable[[list[str]], Awaitable[dict[str, T]]]) -> None:
        self._fetch = fetch
        self._pending: dict[str, list[asyncio.Future[T | None]]] = {}
        self._worker: asyncio.Task[None] | None = None
        self.queries = 0  # batches fetched (tests and benchmarks read it)

    async def get(self, key: str) -> T | None:
        future: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append(future)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            self.queries += 1
            try:
                found = await self._fetch(list(batch))
            except Exception as exc:  # every waiter of the batch gets the error
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for key, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(key))
