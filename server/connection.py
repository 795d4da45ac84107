"""One WebSocket's outbound side: a bounded queue drained by a writer task.

A slow or stuck client never blocks the sender (the switchboard): when its
queue is full the connection is closed instead (LiveKit's message channel).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque

from aiohttp import WSCloseCode, WSMsgType, web

log = logging.getLogger(__name__)

_CLOSE = b""  # sentinel in the queue: close after what is already queued


class Connection:
    """Implements `signaling.backend.Sink` for an aiohttp WebSocketResponse.

    The queue is a deque and a wake-up future rather than an `asyncio.Queue`: `send` runs
    for every relayed frame, and a queue's bookkeeping (unfinished tasks, putters) is
    work nobody here uses."""

    def __init__(self, ws: web.WebSocketResponse, limit: int, peer: str) -> None:
        self.ws = ws
        self.peer = peer
        self._queue: deque[bytes] = deque()
        self._limit = limit if limit > 0 else sys.maxsize  # 0: unbounded, as asyncio.Queue
        self._wakeup: asyncio.Future[None] | None = None  # set while the writer waits
        self._close_code = int(WSCloseCode.OK)
        self._close_reason = ""
        self._writer: asyncio.Task[None] | None = None
        self.last_seen = time.monotonic()
        self.awaiting_hello = True  # meanwhile the idle sweeper holds it to the hello deadline

    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def send(self, payload: bytes) -> None:
        if self._writer is None or self._writer.done():
            return
        if len(self._queue) >= self._limit:
            log.warning("%s: send queue full, closing", self.peer)
            self.close(int(WSCloseCode.TRY_AGAIN_LATER), "too slow")
            return
        self._queue.append(payload)
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
        """Write queued payloads as text frames (they are UTF-8 JSON already), a burst at a time."""
        queue, loop = self._queue, asyncio.get_running_loop()
        try:
            while True:
                if not queue:
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    self._wakeup = None
                    continue
                payload = queue.popleft()
                if payload == _CLOSE:
                    await self.ws.close(code=self._close_code, message=self._close_reason.encode())
                    return
                await self.ws.send_frame(payload, WSMsgType.TEXT)
        except (ConnectionResetError, RuntimeError):
            return

    async def _close_now(self) -> None:
        await self.ws.close(code=self._close_code, message=self._close_reason.encode())

    async def wait_closed(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def stop(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
