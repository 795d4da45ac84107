"""Live queue figures for callers and staff: positions, estimated waits, queue status.

Changes are coalesced: a burst of routing transactions produces one round of
`call.position` / `queue.status` messages a short moment later, so a queue of
thousands does not send thousands of messages per assignment.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections.abc import Callable, Collection, Iterable, Mapping

from . import messages as m
from . import order
from .backend import MessageBus, Router
from .errors import Refused
from .estimate import estimated_wait
from .hours import OpeningHours
from .identity import Role
from .link import ClusterLink
from .model import QueueConfig, QueueSnapshot

log = logging.getLogger(__name__)

FLUSH_DELAY_S = 0.2  # coalescing window: short enough to feel live, long enough to batch a burst
# Callers (kiosks, phones) hear of their queues at most once a window: on a busy day the
# figures change at every flush, and each round goes to every kiosk of the node (the
# goal-size day: ~1,000 a node, five rounds a second). A change after a quiet second
# still goes at the next flush.
TERMINAL_WINDOW_S = 1.0
# A kiosk is sent a `queue.status` when what it shows changed (`kiosk_view`); the figures
# it does not show (the longest wait, the estimate's seconds past its minute) at least
# this often while the queues change.
TERMINAL_REFRESH_S = 30.0
DESK_ROLES = frozenset({Role.SPECIALIST.value})
TERMINAL_ROLES = frozenset({Role.TERMINAL.value})


def shown_wait(seconds: float) -> tuple[str, int]:
    """An estimate in the kiosk's words (`formatWait`, web/static/js/i18n.js): whole
    seconds under a minute, else whole minutes (JavaScript's `Math.round`)."""
    if seconds < 60:
        return "s", max(0, math.floor(seconds + 0.5))
    return "m", math.floor(seconds / 60 + 0.5)


def wait_at(snap: QueueSnapshot, position: int) -> float:
    """The estimated wait of the caller at `position`, from the queue's figures."""
    return estimated_wait(position, snap.available, snap.available + snap.busy,
                          snap.avg_handle_s)


def _retrieved(read: asyncio.Future[list[QueueSnapshot]]) -> None:
    """A shared read whose callers were all cancelled: its error is nobody's to log."""
    if not read.cancelled():
        read.exception()


def kiosk_view(status: m.QueueStatus) -> tuple[tuple[object, ...], ...]:
    """What the kiosk's home screen shows of a `queue.status` (`KioskHome#describe`,
    web/static/js/kiosk-home.js, and the appointment links): two statuses with the same
    view look the same on it."""
    return tuple((q.id, q.name, q.open, q.hours, q.opens_at, q.appointments, q.waiting,
                  q.agents_available == 0, shown_wait(q.estimated_wait_s))
                 for q in status.queues)


class QueueStatus:
    """Positions and `queue.status` of the queues a commit changed, sent a moment later.

    On several nodes each sends only to its own connections, and announces its changes
    to the others (`ClusterLink`)."""

    def __init__(self, queues: Mapping[str, QueueConfig], router: Router, bus: MessageBus,
                 clock: Callable[[], float], link: ClusterLink,
                 hours: OpeningHours | None = None, *,
                 terminal_window_s: float = TERMINAL_WINDOW_S,
                 terminal_refresh_s: float = TERMINAL_REFRESH_S) -> None:
        self._queues = queues
        self._hours = hours
        self._router = router
        self._bus = bus
        self._clock = clock
        self._link = link
        self._dirty: set[str] = set()
        # queue -> call -> the position last sent from here; a queue's calls that no longer
        # wait in it are dropped at its next flush (a call answered, cancelled or ended by
        # a step on another node is never `forget`-ed on this one)
        self._last_position: dict[str, dict[str, int]] = {}
        self._last_status: bytes = b""  # the last sent to specialists
        self._window_s = terminal_window_s
        self._refresh_s = terminal_refresh_s
        self._callers_at = -math.inf  # loop time of the callers' last round
        self._terminal_status: bytes = b""  # the last sent to terminals, and its view
        self._terminal_view: tuple[tuple[object, ...], ...] = ()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self.listeners: set[Callable[[], None]] = set()  # told after each flush (tests, API)
        self._next_read: asyncio.Future[list[QueueSnapshot]] | None = None
        self._reader: asyncio.Task[None] | None = None

    def changed(self, queues: Iterable[str]) -> None:
        """These queues changed here (a commit): refresh, and tell the other nodes."""
        changed = set(queues)
        if not changed:
            return
        self._dirty |= changed
        self._schedule()
        self._link.announce_queues(changed)

    def changed_all(self) -> None:
        self.changed(self._queues)

    def remote_changed(self, queues: Collection[str]) -> None:
        """Another node changed these queues: refresh this node's clients."""
        self._dirty.update(q for q in queues if q in self._queues)
        self._schedule()

    def sent_position(self, queue: str, call_id: str, position: int) -> None:
        self._last_position.setdefault(queue, {})[call_id] = position

    def forget(self, call_id: str) -> None:
        for sent in self._last_position.values():
            sent.pop(call_id, None)

    def remembered(self) -> int:
        """How many calls' last positions this node keeps (those waiting, at most)."""
        return sum(map(len, self._last_position.values()))

    async def estimate(self, queue: str, position: int) -> float:
        return wait_at(await self._router.snapshot(queue, self._clock()), position)

    async def status_message(self) -> m.QueueStatus:
        """The queues' figures as they stand, read after the call; the calls made while one
        read is under way share the next one: a reconnect storm's hellos each sent one
        (one Redis script a hello, 1,500 on a survivor taking a node over)."""
        if self._next_read is None:
            self._next_read = asyncio.get_running_loop().create_future()
            self._next_read.add_done_callback(_retrieved)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.get_running_loop().create_task(self._read())
        return self._status_of(await asyncio.shield(self._next_read))

    async def _read(self) -> None:
        while self._next_read is not None:
            waiting, self._next_read = self._next_read, None
            try:
                waiting.set_result(await self._router.snapshots(list(self._queues),
                                                                self._clock()))
            except Exception as exc:  # every caller of that read gets the error
                waiting.set_exception(exc)

    def _status_of(self, snaps: list[QueueSnapshot]) -> m.QueueStatus:
        now = self._clock()
        items = []
        for q, snap in zip(self._queues.values(), snaps, strict=True):
            hours, opens_at = self.hours_of(q.id, now)
            items.append(
                m.QueueStatusItem(
                    id=q.id,
                    name=q.name,
                    open=q.open and snap.logged_in > 0 and opens_at is None,
                    hours=hours,
                    opens_at=opens_at,
                    appointments=q.appointments_per_slot > 0,
                    waiting=snap.waiting,
                    longest_wait_s=round(snap.longest_wait_s, 1),
                    estimated_wait_s=wait_at(snap, snap.waiting + 1),
                    agents_available=snap.available,
                )
            )
        return m.QueueStatus(queues=items)

    def hours_of(self, queue: str, now: float) -> tuple[str | None, str | None]:
        """The queue's opening hours, and its next opening when its hours have it closed."""
        hours = self._hours
        if hours is None or not hours.has_hours(queue):
            return None, None
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        if hours.is_open(queue, moment):
            return hours.text(queue), None
        opens = hours.next_opening(queue, moment)
        return hours.text(queue), opens.isoformat() if opens is not None else ""

    def open_wait(self, queue: str, since: float, now: float) -> float:
        """Seconds of [since, now) the queue's hours had it open: a wait across closing
        time counts only its open part (service level and reports)."""
        if self._hours is None or not self._hours.has_hours(queue):
            return max(0.0, now - since)
        return self._hours.open_seconds(queue, dt.datetime.fromtimestamp(since, dt.UTC),
                                        dt.datetime.fromtimestamp(now, dt.UTC))

    def open_by_hours(self) -> frozenset[str]:
        """The queues their hours have open now (a change calls for a new `queue.status`)."""
        now = self._clock()
        return frozenset(q for q in self._queues if self.hours_of(q, now)[1] is None)

    async def flush(self) -> None:
        """Send what changed since the last flush: the specialists' `queue.status`; the
        callers' positions and the terminals' status once a `terminal_window_s`."""
        snaps = await self._router.snapshots(list(self._queues), self._clock())
        message = self._status_of(snaps)
        status = m.encode(message)
        if status != self._last_status:
            self._last_status = status
            await self._link.broadcast_local(DESK_ROLES, status)
        await self._callers_round(message, status, {snap.id: snap for snap in snaps})
        for listener in list(self.listeners):
            listener()

    async def _callers_round(self, message: m.QueueStatus, status: bytes,
                             snaps: Mapping[str, QueueSnapshot]) -> None:
        """Positions of the changed queues, and the status if what a kiosk shows changed
        (or the refresh is due): at most one round a window, the rest of the window
        waited out by a flush set for its end."""
        view = kiosk_view(message)
        now = asyncio.get_running_loop().time()
        since = now - self._callers_at
        to_terminals = status != self._terminal_status and (
            view != self._terminal_view or since >= self._refresh_s)
        if not (self._dirty or to_terminals):
            return
        if since < self._window_s:
            self._schedule(self._window_s - since)
            return
        self._callers_at = now
        dirty, self._dirty = self._dirty, set()
        for queue in sorted(dirty):
            snap = snaps.get(queue) or await self._router.snapshot(queue, self._clock())
            await self._push_positions(queue, snap)
        if to_terminals:
            self._terminal_status, self._terminal_view = status, view
            await self._link.broadcast_local(TERMINAL_ROLES, status)

    async def _push_positions(self, queue: str, snap: QueueSnapshot) -> None:
        """`call.position` to this node's callers whose place changed; the estimates from
        the figures the flush read (`snap`), a round trip less a queue."""
        waiting = await self._router.waiting(queue)
        sent = self._last_position.get(queue, {})
        still = {call_id for call_id, _ in waiting}
        for gone in [call_id for call_id in sent if call_id not in still]:
            del sent[gone]
        if not sent:
            self._last_position.pop(queue, None)
        if not waiting:
            return
        for index, (call_id, principal) in enumerate(waiting):
            position = index + 1
            sent = self._last_position.setdefault(queue, {})
            if sent.get(call_id) == position or not self._link.is_local(principal):
                continue
            sent[call_id] = position
            wait = wait_at(snap, position)
            payload = m.encode(m.CallPosition(call_id=call_id, position=position,
                                              estimated_wait_s=wait))
            as_of = order.as_of(principal)  # several nodes: never after a later event
            if as_of is None:
                await self._bus.send(principal, payload)
            else:
                await self._bus.send_numbered(principal, [payload], as_of=as_of)

    def _schedule(self, delay_s: float = FLUSH_DELAY_S) -> None:
        """A flush in `delay_s`, unless one is due sooner."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        handle = self._flush_handle
        if handle is not None:
            if handle.when() <= loop.time() + delay_s:
                return
            handle.cancel()
        self._flush_handle = loop.call_later(delay_s, self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        if self._flushing is not None and not self._flushing.done():
            self._schedule()
            return
        self._flushing = asyncio.get_running_loop().create_task(self._run_flush())

    async def _run_flush(self) -> None:
        try:
            await self.flush()
        except Refused as exc:  # fenced: this node's clients are reconnecting elsewhere
            log.info("queue status not sent: %s", exc.message)
        except Exception:
            log.exception("queue status flush failed")

    async def close(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._flushing is not None and not self._flushing.done():
            self._flushing.cancel()
            await asyncio.gather(self._flushing, return_exceptions=True)
