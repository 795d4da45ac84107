"""A step's independent reads: side by side on a cluster, one by one on a node alone.

On a cluster each read is a wait for Redis, a turn of a busy event loop: together they
cost one. A node alone runs them one by one: its memory backends never suspend, and a
step must not either where it relies on that (`requests._queue`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from .services import Services

T = TypeVar("T")


async def together(s: Services, *reads: Awaitable[Any]) -> list[Any]:
    """The reads' results or errors, in order (`raised` gives each back or raises it)."""
    if not s.link.alone:
        return list(await asyncio.gather(*reads, return_exceptions=True))
    results: list[Any] = []
    for read in reads:
        try:
            results.append(await read)
        except Exception as exc:
            results.append(exc)
    return results


def raised(result: T | BaseException) -> T:
    if isinstance(result, BaseException):
        raise result
    return result
