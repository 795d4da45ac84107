"""Debug only: what a process's memory is made of, logged now and then (issue 16).

Off unless the process's environment has `VIRTUAL_WINDOW_MEMWATCH=SECONDS` (`vwin serve` and
`vwin recorder` read it; a recorder started by `vwin serve` inherits it). Every SECONDS
the logger `vwin.memwatch` writes, at WARNING so that it shows at the default level:

- `rss`: the resident set by kind of mapping, from /proc/self/smaps: `heap` (glibc's
  main arena: the C library's and the extensions' small blocks), `anon` (pymalloc's
  arenas, glibc's thread arenas and its large blocks, native libraries' own buffers),
  `file` (code and data of the loaded libraries); and glibc's own view (`mallinfo2`:
  bytes in use and free in its arenas, mmap'd blocks);
- `gc`: objects the collector tracks, by type, the types whose count changed most since
  the previous report (objects frozen at start-up are not counted);
- with tracemalloc tracing, the places (FRAMES deep) whose allocated size changed most
  since the previous report. `VIRTUAL_WINDOW_MEMWATCH_TRACE=FRAMES` starts tracing with
  the watch; or, the watch on, `kill -USR2 PID` starts it in that process only (a node
  restarted mid-day, once warm) and a second USR2 stops it. Tracing costs CPU and memory
  (a traced node's RSS is no figure), never in production.

It reads, never frees or changes anything; a report costs tens of milliseconds (every
tracked object is counted), so keep SECONDS at 10 or more.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import re
import signal
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ENV = "VIRTUAL_WINDOW_MEMWATCH"
TRACE_ENV = "VIRTUAL_WINDOW_MEMWATCH_TRACE"
TOP = 12
TRACE_FRAMES = 4  # a USR2 without VIRTUAL_WINDOW_MEMWATCH_TRACE traces this deep
_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")

log = logging.getLogger("vwin.memwatch")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def interval() -> float | None:
    """The seconds between reports from the environment, or None (off)."""
    raw = os.environ.get(ENV, "").strip()
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def smaps_mb(path: Path = Path("/proc/self/smaps")) -> dict[str, float]:
    """Resident MB by kind of mapping: heap, anon, file, other (stack, vdso...)."""
    kb = dict.fromkeys(("heap", "anon", "file", "other"), 0)
    kind = "other"
    with contextlib.suppress(OSError), path.open() as lines:
        for line in lines:
            if _MAPPING.match(line):
                fields = line.split(maxsplit=5)
                name = fields[5].strip() if len(fields) > 5 else ""
                kind = ("heap" if name == "[heap]" else "anon" if not name
                        else "file" if name.startswith("/") else "other")
            elif line.startswith("Rss:"):
                kb[kind] += int(line.split()[1])
    return {k: v / 1024 for k, v in kb.items()}


def _mallinfo2() -> Callable[[], _Mallinfo2] | None:
    name = ctypes.util.find_library("c")
    try:
        call = ctypes.CDLL(name).mallinfo2 if name else None
    except (OSError, AttributeError):
        return None
    if call is not None:
        call.restype = _Mallinfo2
    return call


_MALLINFO2 = _mallinfo2()  # looked up once: each CDLL() is an object kept for good


def mallinfo_mb() -> dict[str, float]:
    """glibc's arenas: `used` and `free` bytes in them, `mmap` (large blocks); {} elsewhere."""
    if _MALLINFO2 is None:
        return {}
    info = _MALLINFO2()
    mb = 1024 * 1024
    return {"used": info.uordblks / mb, "free": info.fordblks / mb, "mmap": info.hblkhd / mb}


class MemWatch:
    """One report after another, each compared with the one before."""

    def __init__(self) -> None:
        self._types: Counter[str] = Counter()
        self._snapshot: tracemalloc.Snapshot | None = None

    def report(self) -> str:
        rss = smaps_mb()
        heap = mallinfo_mb()
        types = Counter(type(o).__name__ for o in gc.get_objects())
        changed = sorted(((n - self._types.get(t, 0), t, n) for t, n in types.items()),
                         key=lambda c: -abs(c[0]))
        changed += [(-n, t, 0) for t, n in self._types.items() if t not in types]
        self._types = types
        lines = [
            "memwatch rss " + " ".join(f"{k} {v:.1f}" for k, v in rss.items())
            + f" total {sum(rss.values()):.1f} MB; malloc "
            + " ".join(f"{k} {v:.1f}" for k, v in heap.items())
            + f" MB; gc objects {sum(types.values())}",
            "  gc by type (change, count): " + ", ".join(
                f"{t} {d:+d}={n}" for d, t, n in changed[:TOP] if d),
        ]
        if tracemalloc.is_tracing():
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)])
            if self._snapshot is not None:
                key = "traceback" if tracemalloc.get_traceback_limit() > 1 else "lineno"
                for stat in snapshot.compare_to(self._snapshot, key)[:TOP]:
                    where = " < ".join(f"{Path(f.filename).name}:{f.lineno}"
                                       for f in reversed(stat.traceback))  # newest first
                    lines.append(f"  traced {stat.size_diff / 1024:+.1f} KB "
                                 f"({stat.count_diff:+d}) = {stat.size / 1024:.1f} KB "
                                 f"at {where}")
            self._snapshot = snapshot
            lines.append(f"  traced total {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MB")
        else:
            self._snapshot = None  # stopped: the next trace starts a new comparison
        return "\n".join(lines)


async def watch(seconds: float) -> None:
    """Log a report every `seconds` until cancelled."""
    memwatch = MemWatch()
    while True:
        log.warning("%s", memwatch.report())
        await asyncio.sleep(seconds)


def start() -> asyncio.Task[None] | None:
    """The watch as a task of the running loop when `VIRTUAL_WINDOW_MEMWATCH` asks for it."""
    seconds = interval()
    if seconds is None:
        return None
    raw = os.environ.get(TRACE_ENV, "").strip()
    frames = int(raw) if raw.isdigit() and int(raw) > 0 else 0
    if frames and not tracemalloc.is_tracing():
        tracemalloc.start(frames)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):  # not on Windows
        loop.add_signal_handler(signal.SIGUSR2, _toggle_tracing, frames or TRACE_FRAMES)
    return loop.create_task(watch(seconds))


def _toggle_tracing(frames: int) -> None:
    if tracemalloc.is_tracing():
        tracemalloc.stop()
        log.warning("memwatch: tracemalloc stopped")
    else:
        tracemalloc.start(frames)
        log.warning("memwatch: tracemalloc started (%d frames)", frames)
