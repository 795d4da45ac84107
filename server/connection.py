"""One WebSocket's outbound side: written at once while the socket keeps up, else a bounded
queue drained by a writer task.

A slow or stuck client never blocks the sender (the switchboard): when its
queue is full the connection is closed instead (LiveKit's message channel).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import types
from collections import deque
from collections.abc import Coroutine, Generator
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

log = logging.getLogger(__name__)

_CLOSE = b""  # sentinel in the queue: close after what is already queued
_TEXT = WSMsgType.TEXT
_GONE = (ConnectionResetError, RuntimeError)  # the socket is closing or closed: stop writing


class Connection:
    """Implements `signaling.backend.Sink` for an aiohttp WebSocketResponse.

    While nothing is queued and the writer task is idle, `send` writes the frame itself:
    the frame is in the socket's buffer before `send` returns, as in a bare relay, with no
    wake-up of another task per burst (0.6-2 µs a relayed frame). A write that has to
    wait (the client stopped reading, the kernel buffer is full) is handed to the writer
    task, and everything after it queues behind it, bounded as before.

    The queue is a deque and a wake-up future rather than an `asyncio.Queue`: a queue's
    bookkeeping (unfinished tasks, putters) is work nobody here uses."""

    def __init__(self, ws: web.WebSocketResponse, limit: int, peer: str) -> None:
        self.ws = ws
        self.peer = peer
        self._queue: deque[bytes] = deque()
        self._limit = limit if limit > 0 else sys.maxsize  # 0: unbounded, as asyncio.Queue
        self._wakeup: asyncio.Future[None] | None = None  # pending while the writer is idle
        self._waiting: tuple[Coroutine[Any, Any, None], Any] | None = None  # a write that waits
        self._close_code = int(WSCloseCode.OK)
        self._close_reason = ""
        self._writer: asyncio.Task[None] | None = None
        self.last_seen = time.monotonic()
        self.awaiting_hello = True  # meanwhile the idle sweeper holds it to the hello deadline

    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def send(self, payload: bytes) -> None:
        writer = self._writer
        if writer is None or writer.done():
            return
        queue = self._queue
        if len(queue) >= self._limit:
            log.warning("%s: send queue full, closing", self.peer)
            self.close(int(WSCloseCode.TRY_AGAIN_LATER), "too slow")
            return
        idle = self._wakeup
        if not queue and idle is not None and not idle.done():
            self._write_now(payload, writer)
            return
        queue.append(payload)
        self._wake()

    def _write_now(self, payload: bytes, writer: asyncio.Task[None]) -> None:
        """Run the socket's `send_frame` up to its first wait: unless the socket is paused,
        there is none and the frame is written. A write that waits goes on in the writer
        task (`_finish`), which is woken for it, so what follows queues behind it."""
        write = self.ws.send_frame(payload, _TEXT)
        try:
            waits_for = write.send(None)
        except StopIteration:
            return
        except _GONE:
            writer.cancel()  # as the writer task ends when a write fails
            return
        self._waiting = (write, waits_for)
        self._wake()

    @property
    def closing(self) -> bool:
        return bool(self._close_reason)

    def close(self, code: int, reason: str) -> None:
        """Close after the queued messages; safe to call twice."""
        if self._close_reason:
            return
        self._close_code = code
        self._close_reason = reason or "closing"
        if len(self._queue) < self._limit:
            self._queue.append(_CLOSE)
            self._wake()
            return
        # a stuck client: drop what is queued and close now
        self._queue.clear()
        if self._writer is not None:
            self._writer.cancel()
        self._writer = asyncio.get_running_loop().create_task(self._close_now())

    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _write_loop(self) -> None:
        """Finish a write `send` began, then write queued payloads as text frames (they are
        UTF-8 JSON already), a burst at a time."""
        queue, loop = self._queue, asyncio.get_running_loop()
        try:
            while True:
                if self._waiting is not None:
                    write, waits_for = self._waiting
                    await _finish(write, waits_for)
                    self._waiting = None
                    continue
                if not queue:
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    self._wakeup = None
                    continue
                payload = queue.popleft()
                if payload == _CLOSE:
                    await self.ws.close(code=self._close_code, message=self._close_reason.encode())
                    return
                await self.ws.send_frame(payload, _TEXT)
        except _GONE:
            return
        finally:
            if self._waiting is not None:  # stopped or cancelled before it was finished
                self._waiting[0].close()
                self._waiting = None

    async def _close_now(self) -> None:
        await self.ws.close(code=self._close_code, message=self._close_reason.encode())

    async def wait_closed(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def stop(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)


@types.coroutine
def _finish(write: Coroutine[Any, Any, None], waits_for: Any) -> Generator[Any, Any, None]:
    """Drive a coroutine begun elsewhere on from where it stopped, in the awaiting task:
    what it waits for is handed to the task, the task's answer (a result, or a cancellation)
    back to it, as `await` would have done from the start."""
    while True:
        try:
            answer = yield waits_for
        except BaseException as exc:
            try:
                waits_for = write.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waits_for = write.send(answer)
            except StopIteration:
                return
