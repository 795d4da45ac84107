"""What one step decided: log events, messages, timers, queues changed, dispatch again.

A step fills an `Outbox`; `signaling.commit.commit` carries it out in the one
order the design promises. Nothing in a step logs, sends or sets a timer itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable

from . import events as ev
from . import messages as m
from . import order
from .events import LogEvent, Payload
from .identity import Role, principal_of
from .model import AgentState, Call
from .timers import Timer

Still = Callable[[], Awaitable[bool]]
"""Whether a state a step read is still so, asked right before its message is sent."""


class Outbox:
    """The effects of one step, in the order each kind is applied. (A plain class: one is
    made for every relayed `rtc.*` message, so it stays cheap to build.)"""

    __slots__ = ("all_queues", "cancels", "clock", "dispatch", "durable_timers", "events",
                 "logged", "numbered", "queues", "sends", "still", "timers", "undo")

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.durable_timers: list[Timer] = []  # set before the log: they outlive a crash
        self.events: list[LogEvent] = []
        self.sends: list[tuple[str, m.Message]] = []
        # index in `sends` -> the number a routing transaction took for its principal
        # (`order.py`; several nodes only: empty on one)
        self.numbered: dict[int, int] = {}
        # index in `sends` -> whether its state still holds, for a message sent unnumbered
        # (`send(..., still=)`: a re-sync's state on one node)
        self.still: dict[int, Still] = {}
        self.cancels: list[str] = []
        self.timers: list[Timer] = []
        self.dispatch = False  # offer what the router can match now, once this is committed
        self.queues: set[str] = set()  # whose figures changed
        self.all_queues = False
        # routing changes taken back if the log fails (made before it: `call_request`)
        self.undo: list[Callable[[], Awaitable[object]]] = []
        # run once the events are in the log (what was kept in case they never got there)
        self.logged: list[Callable[[], None]] = []

    def utcnow(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def event(self, payload: Payload, call: Call | None = None, actor: str | None = None,
              at: dt.datetime | None = None) -> LogEvent:
        """Log this about the call (or, without a call, about the actor); `at` when it
        happened, if not now (a dead node's step logged by its survivor)."""
        return self.note(payload, session_id=call.session_id if call else None,
                         call_id=call.id if call else None, actor=actor, at=at)

    def note(self, payload: Payload, *, session_id: str | None, call_id: str | None = None,
             actor: str | None = None, at: dt.datetime | None = None) -> LogEvent:
        """Log this in a session named by id (the call may be over)."""
        event = ev.log_event(payload, at or self.utcnow(), session_id=session_id,
                             call_id=call_id, actor=actor)
        self.events.append(event)
        return event

    def send(self, principal: str, message: m.Message, still: Still | None = None) -> None:
        """Send after the log; in the cluster's order when a transaction of this step
        numbered the principal (`order.latest`). A state read before (`still`, a re-sync's
        `call.connected`) goes unnumbered only if it still holds when sent: on one node the
        check and the send run in one turn of the event loop, so a hang-up that crossed the
        read is never followed by it; numbered, the cluster's order puts it before the
        hang-up's news (`MessageBus.resync`)."""
        number = order.latest(principal)
        if number is not None:
            self.numbered[len(self.sends)] = number
        elif still is not None:
            self.still[len(self.sends)] = still
        self.sends.append((principal, message))

    def send_all(self, principals: Iterable[str], message: m.Message) -> None:
        for principal in principals:
            self.send(principal, message)

    def set_timer(self, timer: Timer, *, durable: bool = False) -> None:
        """Set after the sends, or (`durable`) before the log, so that a node that dies
        before sending still has it fire elsewhere."""
        (self.durable_timers if durable else self.timers).append(timer)

    def cancel_timer(self, key: str) -> None:
        self.cancels.append(key)

    def changed(self, queue: str) -> None:
        self.queues.add(queue)

    def changed_all(self) -> None:
        self.all_queues = True

    def agent_status(self, agent_id: str, status: AgentState, reason: str) -> None:
        """A specialist's status changed: logged, and their console told."""
        actor = principal_of(Role.SPECIALIST, agent_id)
        self.event(ev.AgentStatus(agent_id=agent_id, new=status.value, reason=reason),
                   actor=actor)
        self.send(actor, m.AgentStatusChanged(status=status.value, reason=reason))

    def merge(self, other: Outbox) -> None:
        """Take another step's effects after this one's."""
        self.durable_timers += other.durable_timers
        self.events += other.events
        self.numbered |= {len(self.sends) + i: n for i, n in other.numbered.items()}
        self.still |= {len(self.sends) + i: f for i, f in other.still.items()}
        self.sends += other.sends
        self.cancels += other.cancels
        self.timers += other.timers
        self.dispatch = self.dispatch or other.dispatch
        self.queues |= other.queues
        self.all_queues = self.all_queues or other.all_queues
        self.undo += other.undo
        self.logged += other.logged
