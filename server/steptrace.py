"""Where one message's step waited: its calls to Redis and the database, timed.

`vwin_message_handle_seconds` says how long a step took; this says where. While a step
is traced (`STEP`, set by the socket's read loop around one handled message), each
backend call it makes adds a wait: a named routing script, any other Redis command, a
step's timers, a session-log append, a database read or write. A call made inside
another (the script's EVALSHA inside the router's named call) is the outer one's: waits
never count twice, except where a step runs calls side by side (`asyncio.gather`: each
is its own wait, and their sum may exceed the step). What is not in a wait is the
node's own time: CPU and its event loop's turns.

The waits feed `vwin_step_wait_seconds` by kind; a step slower than `server.slow_step_ms`
is logged with its waits, at most one line a second (`SlowSteps`), so that a database
stall does not flood the log it is diagnosed from."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

SLOW_LOG_EVERY_S = 1.0  # at most one slow-step line this often; the others counted in it


class Trace:
    """One step's waits: (kind, start after the step's start, seconds)."""

    __slots__ = ("started", "waits")

    def __init__(self, started: float) -> None:
        self.started = started
        self.waits: list[tuple[str, float, float]] = []

    def waited(self) -> float:
        """Seconds within at least one wait (side-by-side waits counted once)."""
        total, reach = 0.0, 0.0
        for _, start, seconds in sorted(self.waits, key=lambda w: w[1]):
            end = start + seconds
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total


STEP: contextvars.ContextVar[list[Trace] | None] = contextvars.ContextVar("vwin_step",
                                                                          default=None)
"""The traced step, held in a list emptied when the step is done (`end`): a task or
timer the step started copies its context and may outlive it by minutes (a ring timer's
handle, cancelled, stays in the loop until due); its waits are not the step's, and the
trace must not live on with it."""
_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("vwin_wait", default=False)
Begun = contextvars.Token[list[Trace] | None]


def begin(started: float) -> tuple[Trace, Begun]:
    """A traced step from `started` (monotonic) on, until `end` (a call, not a context
    manager: the socket's read loop runs it for every frame but relays)."""
    trace = Trace(started)
    return trace, STEP.set([trace])


def end(begun: Begun) -> None:
    held = STEP.get()
    STEP.reset(begun)
    if held:
        held.clear()


@contextlib.contextmanager
def waiting(kind: str) -> Iterator[None]:
    """Time the block as a wait of the traced step, if any and not inside another wait."""
    held = STEP.get()
    if not held or _INSIDE.get():
        yield
        return
    trace = held[0]
    token = _INSIDE.set(True)
    start = time.monotonic()
    try:
        yield
    finally:
        _INSIDE.reset(token)
        end = time.monotonic()
        if held:  # the step is not done yet
            trace.waits.append((kind, start - trace.started, end - start))


class SlowSteps:
    """Logs a step slower than `threshold_s` with its waits (module doc); 0: never."""

    def __init__(self, threshold_s: float, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.threshold_s = threshold_s
        self._clock = clock
        self._next = 0.0
        self._unlogged = 0

    def check(self, tag: str, trace: Trace, seconds: float) -> None:
        if not self.threshold_s or seconds < self.threshold_s:
            return
        now = self._clock()
        if now < self._next:
            self._unlogged += 1
            return
        self._next = now + SLOW_LOG_EVERY_S
        more = (f" (and {self._unlogged} more slow steps since the last line)"
                if self._unlogged else "")
        self._unlogged = 0
        log.warning("slow step: %s took %.0f ms, %.0f ms of it waiting: %s%s", tag,
                    seconds * 1000, trace.waited() * 1000, describe(trace) or "no waits", more)


def describe(trace: Trace) -> str:
    """The waits in the order they began: `kind at +<start> took <seconds> ms`."""
    return ", ".join(f"{kind} at +{start * 1000:.0f} took {seconds * 1000:.0f} ms"
                     for kind, start, seconds in sorted(trace.waits, key=lambda w: w[1]))
