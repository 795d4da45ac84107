"""Give the C heap's free pages back to the system (glibc `malloc_trim`).

Codec buffers, SRTP and DTLS contexts, parsed frames and sockets' buffers are allocated
through malloc. When a peak of calls ends glibc keeps what they freed for later, so a
process's RSS stays at the day's high-water mark and steps up with every higher peak:
after an 8-hour compressed day (issue 16, bench.day) a recorder held ~10 MB of free heap
beside ~24 MB in use, a node ~4 MB beside 25 MB. Trimming now and then returns it. The
server uses it too (its idle sweeper); a no-op where the C library has no
`malloc_trim` (musl, macOS).

Each trim first empties `linecache`: every traceback logged (a Redis restart, a database
connection killed) reads the whole source of each file it passes through and keeps its
lines for good; after a faulted day a node held ~2 MB of source lines per new kind of
failure (issue 16: a node restarted mid-day grew in steps at each later fault). The
next traceback reads them again, from disk, once.

The recorder's trimmer (`collect=True`) runs a full garbage collection first: each
recorded call leaves reference cycles (aiortc's and PyAV's objects, and the native
buffers they hold) that only a full collection frees, and a recorder's full collections
came seldom (one when the objects that outlived two collections exceed a quarter of the
~118,000 of its start-up): `bench.recorder_calls` grew +0.12 MB a call without it, +0.01
with it. Its start-up heap is frozen (`gc.freeze`), so the collection walks only what the
calls made since. Not on a node: a full pass there holds the relay (its own frozen heap
and its idle sweeper's trim every minute are enough so far). A call that ends too soon after
the last trim gets one when the interval is over (`trim_soon`): the last calls of a peak no
longer leave their garbage and free heap until the next call, which in a quiet hour (or a
compressed bench day, where 30 s is half a simulated hour) could be long, and is what a
recorder's RSS showed meanwhile.

The recorder's collection is not held to the trim's interval (`collect_interval_s`: at a
call's end, at most once a second, the calls ending within that second together). At a
steady load of a dozen parties or more calls end every few seconds, and 30 s of ended
calls' garbage sat beside the live calls until the next trim: pymalloc's arenas and
glibc's heap grew to that high-water mark and kept it (fragmented by the live calls'
objects), so a recorder's RSS rose ~20 MB over its first hours of turnover, which the
replacement recorder of a faulted day was judged on (`bench.recorder_calls --parallel 12
--trim --trim-interval 30`, docs/benchmarks.md). A full collection walks only what was
made since the frozen start-up heap (the live calls' objects).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import linecache
import math
import time
from collections.abc import Callable

MIN_INTERVAL_S = 30.0  # a trim walks the whole heap: not after every call at a peak
COLLECT_INTERVAL_S = 1.0  # the recorder's collection: at a call's end, at most once a second


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class HeapTrimmer:
    """`trim()` returns free heap pages to the system, at most once per interval."""

    def __init__(self, min_interval_s: float = MIN_INTERVAL_S, *, collect: bool = False,
                 collect_interval_s: float = COLLECT_INTERVAL_S) -> None:
        self._trim = _malloc_trim()
        self._interval = min_interval_s
        self._last = -math.inf
        self._collect = collect  # a full garbage collection first (the recorder's, below)
        self._collect_interval = collect_interval_s  # and between trims, by `trim_soon`
        self._collected = -math.inf
        self._pending: asyncio.TimerHandle | None = None  # `trim_soon`'s, at most one
        self._pending_due = math.inf

    @property
    def available(self) -> bool:
        return self._trim is not None

    def trim_soon(self) -> None:
        """`trim()` now, or once the interval since the last one is over; with `collect`,
        a full collection now or once its own interval is over (one pending call at a
        time, in the running event loop, at the earlier of the two)."""
        now = time.monotonic()
        if now - self._last >= self._interval:
            self.trim()
            return
        due = self._last + self._interval
        if self._collect:
            if now - self._collected >= self._collect_interval:
                self._collected = now
                gc.collect()
            else:
                due = min(due, self._collected + self._collect_interval)
        if self._pending is not None:
            if self._pending_due <= due:
                return  # already as soon
            self._pending.cancel()
        self._pending_due = due
        self._pending = asyncio.get_running_loop().call_later(due - now, self._trim_pending)

    def _trim_pending(self) -> None:
        self._pending = None
        self.trim_soon()

    def trim(self) -> bool:
        """True if it trimmed now (not too soon after the last one, and libc can)."""
        now = time.monotonic()
        if now - self._last < self._interval:
            return False
        self._last = self._collected = now
        if self._collect:
            gc.collect()
        linecache.clearcache()
        if self._trim is None:
            return False
        self._trim(0)
        return True
