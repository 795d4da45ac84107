"""The in-memory backends: one process, no shared state (the embedded default)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .acd import CallCenter
from .backend import ENDINGS_KEPT_S, Ending, Presence, Sink, TimerHandler
from .identity import caller_principal
from .model import Agent, AgentState, Call, CallState, Offer, QueueConfig, QueueSnapshot
from .routing import RequestKeys, handoff_refusal, in_progress_refusal, known_queue
from .timers import Timer

log = logging.getLogger(__name__)

REPLACED = 4409  # close code: another connection of the same principal took over
BROADCAST_SLICE = 64  # sockets written to between two turns of the event loop


class MemoryRouter:
    """`Router` over one `CallCenter`; atomic because nothing in it awaits."""

    def __init__(self, queues: list[QueueConfig]) -> None:
        self.center = CallCenter(queues)
        self._by_terminal: dict[str, set[str]] = {}
        self._requests = RequestKeys()
        # the endings whose step has not logged them (yet: its node's log failed), the
        # oldest first
        self._endings: dict[str, Ending] = {}

    async def agent_join(self, agent: Agent, now: float) -> Agent:
        return self.center.agent_join(agent, now)

    async def agent_leave(self, agent_id: str) -> Agent | None:
        return self.center.agent_leave(agent_id)

    async def set_connected(self, agent_id: str, connected: bool) -> None:
        self.center.set_connected(agent_id, connected)

    async def set_status(self, agent_id: str, status: AgentState, now: float) -> AgentState | None:
        return self.center.set_status(agent_id, status, now)

    async def wrapup_done(self, agent_id: str, now: float) -> bool:
        return self.center.wrapup_done(agent_id, now)

    async def check_open(self, queue: str) -> str | None:
        return self.center.check_open(queue)

    async def enqueue(self, call: Call) -> int:
        if call.id not in self.center.calls:  # the same call again: `duplicate_call`
            known_queue(self.center.queues, call.queue)
            refusal = in_progress_refusal(call, await self.calls_of_terminal(call.terminal_id))
            if refusal is not None:
                raise refusal
            self._requests.claim(call)
        position = self.center.enqueue(call)
        self._by_terminal.setdefault(call.terminal_id, set()).add(call.id)
        return position

    async def remove(self, call_id: str, now: float, ending: Ending | None = None
                     ) -> Call | None:
        return self._forget(self.center.remove(call_id, now), ending)

    async def overflow(self, call_id: str) -> bool:
        return self.center.overflow(call_id)

    async def dispatch(self, now: float) -> list[Offer]:
        return self.center.dispatch(now)

    async def accept(self, call_id: str, agent_id: str, now: float, offer: int | None = None
                     ) -> Call:
        return self.center.accept(call_id, agent_id, now, offer)

    def connected_in(self, call_id: str, session_id: str) -> bool:
        """`recorders.LiveCalls`: the recorder pool's check, in the turn it assigns."""
        call = self.center.calls.get(call_id)
        return (call is not None and call.state == CallState.CONNECTED
                and call.session_id == session_id)

    async def decline(self, call_id: str, agent_id: str, now: float, offer: int | None = None
                      ) -> Call:
        return self.center.decline(call_id, agent_id, now, offer)

    async def timeout(self, call_id: str, agent_id: str, now: float, offer: int | None = None
                      ) -> tuple[Call, bool] | None:
        return self.center.timeout(call_id, agent_id, now, offer)

    async def withdraw(self, call_id: str, agent_id: str, now: float) -> Call | None:
        return self.center.withdraw(call_id, agent_id, now)

    async def hangup(self, call_id: str, now: float, ending: Ending | None = None
                     ) -> Call | None:
        return self._forget(self.center.hangup(call_id, now), ending)

    async def requeue(self, call_id: str, agent_id: str, now: float) -> Call | None:
        return self.center.requeue(call_id, agent_id, now)

    async def join(self, invitation_id: str, agent_id: str, now: float,
                   offer: int | None = None) -> Call:
        call = self.center.calls.get(invitation_id)
        joined = self.center.join(invitation_id, agent_id, now, offer)
        self._forget(call)
        return joined

    async def leave(self, call_id: str, agent_id: str, now: float) -> Call | None:
        return self.center.leave(call_id, agent_id, now)

    async def hand_off(self, call_id: str, terminal_id: str, visitor_id: str,
                       now: float = 0.0) -> Call:
        del now  # one node: its routing dies with its log's missing appends
        call = self.center.calls.get(call_id)
        refusal = handoff_refusal(call, call_id, terminal_id)
        if refusal is not None:
            raise refusal
        assert call is not None
        call.visitor = visitor_id
        return call

    async def get_call(self, call_id: str) -> Call | None:
        return self.center.calls.get(call_id)

    async def get_agent(self, agent_id: str) -> Agent | None:
        return self.center.agents.get(agent_id)

    async def position(self, call_id: str) -> int | None:
        return self.center.position(call_id)

    async def waiting(self, queue: str) -> list[tuple[str, str]]:
        return [(c.id, caller_principal(c)) for c in self.center.waiting_calls(queue)]

    async def snapshot(self, queue: str, now: float) -> QueueSnapshot:
        return self.center.snapshot(queue, now)

    async def snapshots(self, queues: Sequence[str], now: float) -> list[QueueSnapshot]:
        return [self.center.snapshot(queue, now) for queue in queues]

    async def calls_of_terminal(self, terminal_id: str) -> list[Call]:
        ids = self._by_terminal.get(terminal_id, set())
        return [self.center.calls[i] for i in ids if i in self.center.calls]

    async def ending(self, call_id: str) -> Ending | None:
        return self._endings.get(call_id)

    def ending_logged(self, call_id: str) -> None:
        self._endings.pop(call_id, None)

    def _forget(self, call: Call | None, ending: Ending | None = None) -> Call | None:
        if call is not None and ending is not None:
            self._keep(call.id, ending)
        if call is not None and call.state == CallState.ENDED:
            ids = self._by_terminal.get(call.terminal_id)
            if ids is not None:
                ids.discard(call.id)
                if not ids:
                    del self._by_terminal[call.terminal_id]
        return call

    def _keep(self, call_id: str, ending: Ending) -> None:
        """Kept `ENDINGS_KEPT_S`, dropped as a later one is kept (at most a day's calls)."""
        self._endings[call_id] = ending
        oldest = next(iter(self._endings))
        while self._endings[oldest].at < ending.at - ENDINGS_KEPT_S:
            del self._endings[oldest]
            oldest = next(iter(self._endings))


class LocalBus:
    """Principal -> its connection's sink, in this process (the whole bus of one node;
    the part of `RedisBus` that holds this node's connections)."""

    def __init__(self) -> None:
        self._sinks: dict[str, tuple[str, Sink]] = {}

    def sink(self, principal: str) -> Sink | None:
        """The principal's connection here, if any."""
        entry = self._sinks.get(principal)
        return entry[1] if entry is not None else None

    def role(self, principal: str) -> str | None:
        """The role of the principal's connection here, if any."""
        entry = self._sinks.get(principal)
        return entry[0] if entry is not None else None

    def release(self, principal: str) -> Sink | None:
        """Forget the principal's connection here (whichever it is), without closing it."""
        entry = self._sinks.pop(principal, None)
        return entry[1] if entry is not None else None

    def attach(self, principal: str, role: str, sink: Sink) -> None:
        old = self._sinks.get(principal)
        self._sinks[principal] = (role, sink)
        if old is not None and old[1] is not sink:
            old[1].close(REPLACED, "replaced by a newer connection")

    def detach(self, principal: str, sink: Sink) -> None:
        current = self._sinks.get(principal)
        if current is not None and current[1] is sink:
            del self._sinks[principal]

    async def baseline(self, principal: str) -> None:
        """One node numbers nothing: a connection hears everything from its attach."""
        del principal

    async def resync(self, principal: str) -> None:
        """One node numbers nothing: its sends are in order already."""
        del principal

    async def send(self, principal: str, payload: bytes) -> None:
        entry = self._sinks.get(principal)
        if entry is not None:
            entry[1].send(payload)

    async def send_numbered(self, principal: str, payloads: Sequence[bytes], *,
                            seq: int | None = None, as_of: int | None = None) -> None:
        """One node's messages are in order already (nothing numbers them here)."""
        del seq, as_of
        entry = self._sinks.get(principal)
        if entry is not None:
            for payload in payloads:
                entry[1].send(payload)

    async def kick(self, principal: str, code: int, reason: str) -> None:
        entry = self._sinks.get(principal)
        if entry is not None:
            entry[1].close(code, reason)

    async def broadcast(self, roles: frozenset[str], payload: bytes) -> None:
        await self.broadcast_in_slices(roles, payload)

    async def broadcast_in_slices(self, roles: frozenset[str], payload: bytes) -> None:
        """`broadcast_now`, `BROADCAST_SLICE` sockets at a time with the event loop let run
        in between: written at once, a `queue.status` to a node's 1,000 kiosks held every
        other message on the node for the whole fan-out (tens of ms on a loaded machine,
        the goal-size bench day's loop lag)."""
        sinks = [sink for role, sink in list(self._sinks.values()) if role in roles]
        for start in range(0, len(sinks), BROADCAST_SLICE):
            if start:
                await asyncio.sleep(0)
            for sink in sinks[start:start + BROADCAST_SLICE]:
                sink.send(payload)

    def broadcast_now(self, roles: frozenset[str], payload: bytes) -> None:
        for role, sink in list(self._sinks.values()):
            if role in roles:
                sink.send(payload)

    def connected(self) -> set[str]:
        return set(self._sinks)

    def close_local(self, principal: str, code: int, reason: str) -> None:
        entry = self._sinks.get(principal)
        if entry is not None:
            entry[1].close(code, reason)


class LocalScheduler:
    """Timers on this event loop; they die with the process (single node)."""

    def __init__(self, handler: TimerHandler | None = None) -> None:
        """`handler`: what a fired timer runs (None: nothing, e.g. tests that fire by hand)."""
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._handler = handler

    async def change(self, cancel: Sequence[str], schedule: Sequence[Timer]) -> None:
        loop = asyncio.get_running_loop()
        for key in cancel:
            self._drop(key)
        for t in schedule:
            self._drop(t.key)  # a key set again replaces its timer
            self._handles[t.key] = loop.call_later(max(0.0, t.delay_s), self._fire, t.key,
                                                   t.kind, t.payload)

    def _drop(self, key: str) -> None:
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def _fire(self, key: str, kind: str, payload: dict[str, Any]) -> None:
        self._handles.pop(key, None)
        if self._handler is None:
            return
        task: asyncio.Task[None] = asyncio.ensure_future(self._handler(kind, payload))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("timer handler failed", exc_info=task.exception())

    async def close(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class MemoryPresences:
    """Resume tokens of this process's principals. Epochs are never given twice (one
    counter, not one per presence): a disconnect retried late for an old connection must not
    match a presence dropped and made anew since (`server/cluster/presence.py`)."""

    def __init__(self) -> None:
        self._by_principal: dict[str, Presence] = {}
        self._epochs = itertools.count(1)

    async def connect(self, principal: str, resume: str | None) -> tuple[Presence, bool]:
        current = self._by_principal.get(principal)
        if (
            current is not None
            and resume is not None
            and secrets.compare_digest(current.resume, resume)
        ):
            current.epoch = next(self._epochs)
            current.connected = True
            current.replaced = False
            return current, True
        presence = Presence(principal=principal, resume=secrets.token_urlsafe(24),
                            epoch=next(self._epochs), replaced=current is not None)
        self._by_principal[principal] = presence
        return presence, False

    async def disconnect(self, principal: str, epoch: int) -> bool:
        current = self._by_principal.get(principal)
        if current is None or current.epoch != epoch:
            return False
        current.connected = False
        return True

    async def get(self, principal: str) -> Presence | None:
        return self._by_principal.get(principal)

    async def drop(self, principal: str, epoch: int) -> bool:
        current = self._by_principal.get(principal)
        if current is None or current.epoch != epoch or current.connected:
            return False
        del self._by_principal[principal]
        return True


@dataclass(frozen=True, slots=True)
class MemoryBackends:
    """The backends of a node alone (`[routing] backend = "memory"`)."""

    router: MemoryRouter
    bus: LocalBus
    scheduler: LocalScheduler
    presences: MemoryPresences


def memory_backends(queues: Sequence[QueueConfig], on_timer: TimerHandler | None = None
                    ) -> MemoryBackends:
    return MemoryBackends(MemoryRouter(list(queues)), LocalBus(), LocalScheduler(on_timer),
                          MemoryPresences())
