"""Live queue figures for callers and staff: positions, estimated waits, queue status.

Changes are coalesced: a burst of routing transactions produces one round of
`call.position` / `queue.status` messages a short moment later, so a queue of
thousands does not send thousands of messages per assignment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from . import messages as m
from .estimate import estimated_wait
from .identity import principal_of

if TYPE_CHECKING:
    from .switchboard import Switchboard

log = logging.getLogger(__name__)

FLUSH_DELAY_S = 0.2  # coalescing window: short enough to feel live, long enough to batch a burst
STATUS_ROLES = frozenset({"terminal", "specialist"})


class QueueWatch:
    def __init__(self, board: Switchboard) -> None:
        self._board = board
        self._dirty: set[str] = set()
        self._last_position: dict[str, int] = {}
        self._last_status: bytes = b""
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self.listeners: set[Callable[[], None]] = set()
        # Several nodes (Redis backend): tell the others what changed, push positions and
        # status only to this node's own clients. None = one node: everything is local.
        self.announce: Callable[[set[str]], None] | None = None
        self.is_local: Callable[[str], bool] | None = None
        self.broadcast: Callable[[frozenset[str], bytes], Awaitable[None]] | None = None

    def changed(self, queue: str) -> None:
        self._dirty.add(queue)
        self._schedule()
        if self.announce is not None:
            self.announce({queue})

    def changed_all(self) -> None:
        self._dirty.update(self._board.queues)
        self._schedule()
        if self.announce is not None:
            self.announce(set(self._board.queues))

    def remote_changed(self, queues: set[str]) -> None:
        """Another node changed these queues: refresh this node's clients."""
        self._dirty.update(queues & set(self._board.queues))
        self._schedule()

    def sent_position(self, call_id: str, position: int) -> None:
        self._last_position[call_id] = position

    def forget(self, call_id: str) -> None:
        self._last_position.pop(call_id, None)

    async def estimate(self, queue: str, position: int) -> float:
        snap = await self._board.router.snapshot(queue, self._board.clock())
        staffed = snap.available + snap.busy
        return estimated_wait(position, snap.available, staffed, snap.avg_handle_s)

    async def status_message(self) -> m.QueueStatus:
        now = self._board.clock()
        items = []
        for q in self._board.queues.values():
            snap = await self._board.router.snapshot(q.id, now)
            items.append(
                m.QueueStatusItem(
                    id=q.id,
                    name=q.name,
                    open=q.open and snap.logged_in > 0,
                    waiting=snap.waiting,
                    longest_wait_s=round(snap.longest_wait_s, 1),
                    estimated_wait_s=estimated_wait(
                        snap.waiting + 1,
                        snap.available,
                        snap.available + snap.busy,
                        snap.avg_handle_s,
                    ),
                    agents_available=snap.available,
                )
            )
        return m.QueueStatus(queues=items)

    async def flush(self) -> None:
        """Send what changed since the last flush."""
        dirty, self._dirty = self._dirty, set()
        for queue in sorted(dirty):
            await self._push_positions(queue)
        status = m.encode(await self.status_message())
        if status != self._last_status:
            self._last_status = status
            await (self.broadcast or self._board.bus.broadcast)(STATUS_ROLES, status)
        for listener in list(self.listeners):
            listener()

    async def _push_positions(self, queue: str) -> None:
        waiting = await self._board.router.waiting(queue)
        if not waiting:
            return
        snap = await self._board.router.snapshot(queue, self._board.clock())
        staffed = snap.available + snap.busy
        for index, (call_id, terminal_id) in enumerate(waiting):
            position = index + 1
            principal = principal_of("terminal", terminal_id)
            if self._last_position.get(call_id) == position or (
                self.is_local is not None and not self.is_local(principal)
            ):
                continue
            self._last_position[call_id] = position
            wait = estimated_wait(position, snap.available, staffed, snap.avg_handle_s)
            await self._board.bus.send(
                principal,
                m.encode(m.CallPosition(call_id=call_id, position=position, estimated_wait_s=wait)),
            )

    def _schedule(self) -> None:
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._flush_handle = loop.call_later(FLUSH_DELAY_S, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        if self._flushing is not None and not self._flushing.done():
            self._schedule()
            return
        self._flushing = asyncio.get_running_loop().create_task(self._run_flush())

    async def _run_flush(self) -> None:
        try:
            await self.flush()
        except Exception:
            log.exception("queue status flush failed")

    async def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._flushing is not None and not self._flushing.done():
            self._flushing.cancel()
            await asyncio.gather(self._flushing, return_exceptions=True)
