"""Running a step's backend work again while a backend fails (a restarted Redis's stale
pooled connections, the database's connections cut): only for work that is safe to run
twice (docs/cluster.md, "A reply lost with the connection")."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from .errors import Refused

log = logging.getLogger(__name__)

# Waits between attempts of a relay, a recorder's report or an answer (`call.accept`) that
# met a failing backend, about 7 s in all: dropped, an offer to the recorder or its
# segment's report leaves the session unrecorded, and an answer whose transaction ran but
# whose reply was lost leaves the call connected with nobody told.
REPORT_RETRY_S: tuple[float, ...] = (0.1, 0.3, 1.0, 2.0, 4.0)
T = TypeVar("T")

# The token of the attempt this task is running (`again`): the Redis router passes it to
# the transactions that keep what they did under it, so the same attempt run again after
# its reply was lost answers the same (docs/cluster.md, "A reply lost with the connection").
# Kept with the task that runs the attempt: a task started meanwhile (a callback scheduled
# inside it) copies the context, but is not that attempt.
_attempt: ContextVar[tuple[asyncio.Task[Any] | None, str] | None] = ContextVar(
    "routing_attempt", default=None)


def attempt() -> str | None:
    """The token of the attempt this task runs (None: outside `again`)."""
    running = _attempt.get()
    if running is None or running[0] is not _task():
        return None
    return running[1]


async def again(what: str, attempt_once: Callable[[], Awaitable[T]],
                delays: Sequence[float] = REPORT_RETRY_S) -> T:
    """`attempt_once()` as one attempt, tried again while a backend fails (`retrying`):
    every routing transaction in it carries the same token, so one whose reply was lost
    with the connection answers the same again (the same result, the same numbers) and
    changes nothing. Inside another attempt it runs once: the outer one tries again. Each
    try must build its effects afresh (a new outbox), and reach the transactions with what
    it read before the attempt: a read inside it sees the first try's changes."""
    if attempt() is not None:
        return await attempt_once()
    token = _attempt.set((_task(), secrets.token_hex(8)))
    try:
        return await retrying(delays, what, attempt_once)
    finally:
        _attempt.reset(token)


def _task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


async def retrying(delays: Sequence[float], what: str, attempt: Callable[[], Awaitable[T]]
                   ) -> T:
    """`attempt()` again after each delay while it fails on anything but a refusal (a
    refusal changed nothing and will not change); the last failure is raised."""
    try:
        return await attempt()
    except Refused:
        raise
    except Exception as exc:
        return await after_failure(exc, delays, what, attempt)


async def after_failure(failure: Exception, delays: Sequence[float], what: str,
                attempt: Callable[[], Awaitable[T]]) -> T:
    """What `retrying` does once a first attempt, made by the caller, failed with `failure`
    (a caller on every relayed frame makes that attempt itself: no wrapper, no report
    text, while nothing fails)."""
    waits = iter(delays)
    while True:
        delay = next(waits, None)
        if delay is None:
            raise failure
        log.warning("%s failed (%s: %s); again in %.1f s", what, type(failure).__name__,
                    failure, delay)
        await asyncio.sleep(delay)
        try:
            return await attempt()
        except Refused:
            raise
        except Exception as exc:
            failure = exc
