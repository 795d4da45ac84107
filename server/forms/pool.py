"""The processes that render forms, so that WeasyPrint never runs on the event loop.

A render holds the CPU for a few hundred milliseconds; in a thread it would also hold
the GIL from the loop's relay and signalling. Worker processes (spawned, not forked from
a running server) are started on first use, run at a lower CPU priority (`[forms] nice`),
and are shut down with the application, or exit by themselves when it was killed
(`_orphan_watch`: a node killed with SIGKILL left its idle worker, 160 MB, for good).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from server.forms import render

T = TypeVar("T")
ORPHAN_CHECK_S = 1.0  # how often a worker looks whether the server that started it lives


def _worker_init(nice: int, server: int) -> None:
    """Each worker: a lower priority, and a watch on the server process."""
    render.lower_priority(nice)
    threading.Thread(target=_orphan_watch, args=(server,), name="orphan-watch",
                     daemon=True).start()


def _orphan_watch(server: int) -> None:
    """Exit once the server is gone (re-parented: killed, it never shut the pool down)."""
    while os.getppid() == server:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(0)


class FormPool:
    """Run rendering functions of `server.forms.render` in worker processes."""

    def __init__(self, workers: int = 1, nice: int = 10) -> None:
        self._workers = workers
        self._nice = nice
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init, initargs=(self._nice, os.getpid()),
            )
        return self._executor

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker; its exception is raised here."""
        return await asyncio.get_running_loop().run_in_executor(self._pool(), fn, *args)

    async def warm_up(self) -> None:
        """Start every worker and load WeasyPrint in it (a benchmark's first form)."""
        await asyncio.gather(*(self.run(render.warm_up) for _ in range(self._workers)))

    def close(self) -> None:
        """Stop the workers (safe to call twice); a render under way is waited for."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
