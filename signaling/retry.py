"""Running a step's backend work again while a backend fails (a restarted Redis's stale
pooled connections, the database's connections cut): only for work that is safe to run
twice (docs/cluster.md, "A reply lost with the connection")."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from .errors import Refused

log = logging.getLogger(__name__)

# Waits between attempts of a relay, a recorder's report or an answer (`call.accept`) that
# met a failing backend, about 7 s in all: dropped, an offer to the recorder or its
# segment's report leaves the session unrecorded, and an answer whose transaction ran but
# whose reply was lost leaves the call connected with nobody told.
REPORT_RETRY_S: tuple[float, ...] = (0.1, 0.3, 1.0, 2.0, 4.0)
T = TypeVar("T")


async def retrying(delays: Sequence[float], what: str, attempt: Callable[[], Awaitable[T]]
                   ) -> T:
    """`attempt()` again after each delay while it fails on anything but a refusal (a
    refusal changed nothing and will not change); the last failure is raised."""
    try:
        return await attempt()
    except Refused:
        raise
    except Exception as exc:
        return await again(exc, delays, what, attempt)


async def again(failure: Exception, delays: Sequence[float], what: str,
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
