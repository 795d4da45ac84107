"""Memory a C library freed goes back to the system (issue 16: RSS flat over a day)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import linecache
import logging
import os
import sys
import weakref

from recorder.heap import HeapTrimmer

BLOCK = 64 * 1024  # under glibc's mmap threshold: served from the heap, kept when freed
BLOCKS = 1024  # 64 MB


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_free_heap_goes_back_to_the_system_at_most_once_per_interval() -> None:
    trimmer = HeapTrimmer(min_interval_s=3600)
    assert trimmer.available  # glibc (Debian): the machines this runs on
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(BLOCK) for _ in range(BLOCKS)]
    pin = libc.malloc(BLOCK)  # keeps the heap's top in use: free() alone gives nothing back
    for b in blocks:
        ctypes.memset(b, 1, BLOCK)  # touched: resident
    for b in blocks:
        libc.free(b)
    held = _rss_mb()
    assert trimmer.trim()
    after = _rss_mb()
    libc.free(pin)
    assert held - after > 0.75 * BLOCK * BLOCKS / 2**20, (held, after)
    assert not trimmer.trim()  # within the interval



def test_source_lines_read_for_a_logged_traceback_are_not_kept() -> None:
    """A logged traceback reads the source of every file it passes through into
    `linecache`, for good: a trim lets them go (the next traceback reads them again)."""
    try:
        raise RuntimeError("a Redis restart, say")
    except RuntimeError:
        logged = logging.Formatter().formatException(sys.exc_info())  # what a log line holds
    assert 'raise RuntimeError("a Redis restart, say")' in logged
    assert __file__ in linecache.cache
    assert HeapTrimmer(min_interval_s=3600).trim()
    assert __file__ not in linecache.cache


class _Part:
    other: _Part


def test_the_recorders_trim_frees_cycles_only_a_full_collection_would() -> None:
    """Each recorded call left reference cycles (aiortc's and PyAV's objects holding native
    buffers) that waited for a rare full collection: the recorder's trim collects them; a
    node's (no `collect`) leaves the collector's passes alone."""
    gc.disable()
    try:
        for collect in (False, True):
            a, b = _Part(), _Part()
            a.other, b.other = b, a
            gone = weakref.ref(a)
            del a, b
            assert gone() is not None  # reference counting alone never frees a cycle
            assert HeapTrimmer(min_interval_s=3600, collect=collect).trim()
            assert (gone() is None) is collect
    finally:
        gc.enable()
        gc.collect()


async def test_a_call_ending_too_soon_after_a_trim_gets_one_when_the_interval_is_over(
        ) -> None:
    """The last calls of a peak end within the interval of the trim before: their cycles are
    collected once it is over, not left until the next call ends (here the collection's own
    interval is the trim's; the recorder's collects at once:
    `test_recorder_garbage.py`)."""
    trimmer = HeapTrimmer(min_interval_s=3.0, collect=True,  # a busy machine: seconds between
                          collect_interval_s=3.0)
    gc.disable()
    try:
        trimmer.trim_soon()  # the peak's first call: trimmed at once
        a, b = _Part(), _Part()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        trimmer.trim_soon()  # its last call, too soon: no call comes after it
        assert gone() is not None
        async with asyncio.timeout(15):
            while gone() is not None:
                await asyncio.sleep(0.05)
    finally:
        gc.enable()
        gc.collect()
