"""One WebSocket's outbound side: written at once while the socket keeps up, else a bounded
queue drained by a writer task.

A slow or stuck client never blocks the sender (the switchboard): when its
queue is full the connection is closed instead (LiveKit's message channel).

While the socket keeps up, the frames sent to it in one turn of the event loop are
corked: they go out together, as one write to the transport (one `send()` call), when
the read loop that sent them has handled what its TCP read brought
(`Connection.flush_corked`), else at the end of the turn (`_Corked`). A peer is usually
sent several relayed ICE candidates at once (the other side's read loop handles every
frame one TCP read brought), and that system call was the largest single cost of a relay.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import sys
import time
import types
import weakref
from collections import deque
from collections.abc import Coroutine, Generator
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.http import WebSocketWriter

log = logging.getLogger(__name__)

_CLOSE = b""  # sentinel in the queue: close after what is already queued
_TEXT = WSMsgType.TEXT
_GONE = (ConnectionResetError, RuntimeError)  # the socket is closing or closed: stop writing
# A server's text frame header (RFC 6455 5.2): FIN + opcode 1, unmasked, 7/16/64-bit length.
_SHORT = [bytes((0x81, n)) for n in range(126)]
_MEDIUM = struct.Struct("!BBH").pack
_LONG = struct.Struct("!BBQ").pack


def text_frame_header(size: int) -> bytes:
    if size < 126:
        return _SHORT[size]
    if size < 65536:
        return _MEDIUM(0x81, 126, size)
    return _LONG(0x81, 127, size)


class Connection:
    """Implements `signaling.backend.Sink` for an aiohttp WebSocketResponse.

    While nothing is queued and the writer task is idle, `send` writes the frame itself:
    the frame is in the socket's buffer before `send` returns, as in a bare relay, with no
    wake-up of another task per burst (0.6-2 µs a relayed frame). A write that has to
    wait (the client stopped reading, the kernel buffer is full) is handed to the writer
    task, and everything after it queues behind it, bounded as before.

    Where the socket's frames can be built here (aiohttp's writer, no permessage-deflate
    negotiated: `_plain_writer`), such a frame is corked instead: kept until the end of the
    loop's turn, then written with the others of the turn in one transport write (`_flush`),
    unless the socket is paused or closing by then, when they go to the writer task in
    order. Anything queued or a close meanwhile first puts the corked frames in the queue,
    ahead of it. A socket that negotiated compression (which `/ws` no longer offers) has
    each frame compressed and written by aiohttp, at once, as before.

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
        self._plain: WebSocketWriter | None = None  # set: frames are corked (`_flush`)
        self._cork: list[bytes] = []
        self._corked: _Corked | None = None  # this loop's, once started

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._writer = loop.create_task(self._write_loop())
        self._plain = _plain_writer(self.ws)
        self._corked = _Corked.of(loop)

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
            if self._plain is None:
                self._write_now(payload, writer)
                return
            cork = self._cork
            if not cork:
                self._corked.add(self)  # type: ignore[union-attr]  # set with _plain
            cork.append(payload)
            return
        if self._cork:
            self._uncork()
        queue.append(payload)
        self._wake()

    def _uncork(self) -> None:
        """The corked frames go to the writer task, ahead of anything queued."""
        self._queue.extendleft(reversed(self._cork))
        self._cork = []
        self._wake()

    def _flush(self) -> None:
        """The frames corked in this turn of the loop, as one write to the transport, if the
        socket takes it now; else to the writer task, in order."""
        cork = self._cork
        writer, plain = self._writer, self._plain
        if not cork or writer is None or writer.done() or plain is None:
            self._cork = []
            return
        idle = self._wakeup
        transport = plain.transport
        if (self._queue or idle is None or idle.done() or plain.protocol.writing_paused
                or transport.is_closing() or self.ws.closed):
            self._uncork()  # the writer task waits for the socket, or fails as a write would
            return
        self._cork = []
        if len(cork) == 1:
            payload = cork[0]
            data = text_frame_header(len(payload)) + payload
        else:
            parts = []
            for payload in cork:
                parts.append(text_frame_header(len(payload)))
                parts.append(payload)
            data = b"".join(parts)
        try:
            transport.write(data)
        except _GONE:
            writer.cancel()  # as the writer task ends when a write fails
            return
        # aiohttp's writer counts what was written since it last checked the socket's
        # flow control: past its limit, its next frame waits for a paused socket to drain.
        plain._output_size += len(data)

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
    def corking(self) -> bool:
        """The frames of a turn of the loop go out as one write (no compression)."""
        return self._plain is not None

    def flush_corked(self) -> None:
        """Write now what every connection of this loop has corked (`server.ws._serve`,
        when it has handled all the frames one read brought), not at the end of the turn."""
        if self._corked is not None:
            self._corked.flush()

    @property
    def closing(self) -> bool:
        return bool(self._close_reason)

    def close(self, code: int, reason: str) -> None:
        """Close after the queued messages; safe to call twice."""
        if self._close_reason:
            return
        self._close_code = code
        self._close_reason = reason or "closing"
        if self._cork:
            self._uncork()
        if len(self._queue) < self._limit:
            self._queue.append(_CLOSE)
            self._wake()
            return
        # a stuck client: drop what is queued and close now
        self._queue.clear()
        self._cork = []
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


class _Corked:
    """The connections of one event loop that have frames corked: written at the end of
    the loop's turn by one callback for them all, or earlier by `flush` (a read loop that
    has handled everything one TCP read brought: its relays wait for nothing else)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._call_soon = weakref.WeakMethod(loop.call_soon)  # the loop is the weak key
        self._dirty: list[Connection] = []
        self._scheduled = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Corked:
        corked = _CORKED.get(loop)
        if corked is None:
            corked = _CORKED[loop] = cls(loop)
        return corked

    def add(self, conn: Connection) -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            call_soon = self._call_soon()
            if call_soon is not None:
                self._scheduled = True
                call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            try:
                conn._flush()
            except Exception:  # one socket's failure must not hold the others' frames
                log.exception("%s: writing corked frames failed", conn.peer)


_CORKED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Corked] = (
    weakref.WeakKeyDictionary())


def _plain_writer(ws: web.WebSocketResponse) -> WebSocketWriter | None:
    """aiohttp's writer of a prepared server socket that compresses nothing: its frames
    can be built and written here. None for anything else (compression negotiated, a
    stand-in socket, an aiohttp whose writer is not the one this was written against)."""
    writer = getattr(ws, "_writer", None)
    if (type(writer) is not WebSocketWriter or writer.compress or writer.use_mask
            or not isinstance(getattr(writer, "_output_size", None), int)
            or not hasattr(writer.protocol, "writing_paused")):
        return None
    return writer


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
