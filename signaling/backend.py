"""The backend interfaces: what the switchboard needs from the world.

Each has an in-memory implementation (`signaling.memory`, one process) and a
Redis one (`server.cluster`, many nodes), chosen by `[routing] backend`; the
same tests run against both. The session log is implemented by the SQL store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from . import events as ev
from .events import LogEvent
from .model import Agent, AgentState, Call, Offer, QueueSnapshot
from .timers import Timer

ENDINGS_KEPT_S = 86_400
"""How long routing keeps a call's `Ending` once the call is gone: a node restarted within
a day still closes its sessions as they ended."""


class Ending(msgspec.Struct, frozen=True, kw_only=True):
    """How a step ended a call, kept by routing in the transaction that ends it
    (`remove`, `hangup`): a node killed between that transaction and its log append left
    the session open (the short bench day's cancel, logged `interrupted` by the restart);
    whoever closes such a session (the node's restart, a party's lost end) logs this end
    instead (`events`). Kept `ENDINGS_KEPT_S`."""

    at: float  # the routing clock's time of the end
    reason: str
    by: str | None = None  # who ended it (`ended`'s actor)
    answered: bool = False  # `ended`, its members leaving; else `abandoned`
    members: tuple[str, ...] = ()  # the participants who left with the end

    def events(self, session_id: str, call_id: str) -> list[LogEvent]:
        """What the ending step would have logged of the session's close."""
        ts = dt.datetime.fromtimestamp(self.at, dt.UTC)
        if not self.answered:
            return [ev.log_event(ev.Abandoned(reason=self.reason), ts,
                                 session_id=session_id, call_id=call_id, actor=self.by)]
        return [ev.log_event(ev.Ended(reason=self.reason, by=self.by), ts,
                             session_id=session_id, call_id=call_id, actor=self.by),
                *(ev.log_event(ev.ParticipantLeft(participant_id=member, reason=self.reason),
                               ts, session_id=session_id, call_id=call_id, actor=member)
                  for member in self.members)]


class RoutingTransactions(Protocol):
    """Changes to the shared routing state; each method is one atomic transaction
    (`acd.CallCenter` in memory, one Lua script on Redis)."""

    async def agent_join(self, agent: Agent, now: float) -> Agent: ...
    async def agent_leave(self, agent_id: str) -> Agent | None: ...
    async def set_connected(self, agent_id: str, connected: bool) -> None: ...
    async def set_status(
        self, agent_id: str, status: AgentState, now: float
    ) -> AgentState | None: ...
    async def wrapup_done(self, agent_id: str, now: float) -> bool: ...
    async def enqueue(self, call: Call) -> int: ...
    async def remove(self, call_id: str, now: float, ending: Ending | None = None
                     ) -> Call | None:
        """A waiting call taken out; `ending`, how it ended, is kept (`ending`)."""
    async def overflow(self, call_id: str) -> bool: ...
    async def dispatch(self, now: float) -> list[Offer]: ...
    # `offer`: the number of the offer answered or timed out (`Offer.offer`); None = the
    # one ringing now (clients that do not send it). A mismatch refuses with offer_gone.
    async def accept(
        self, call_id: str, agent_id: str, now: float, offer: int | None = None
    ) -> Call: ...
    async def decline(
        self, call_id: str, agent_id: str, now: float, offer: int | None = None
    ) -> Call:
        """The call waits again; the decliner is kept out of it for the queue's
        `decline_block_s` (the caller dispatches again when that ends)."""
    async def timeout(
        self, call_id: str, agent_id: str, now: float, offer: int | None = None
    ) -> tuple[Call, bool] | None: ...
    async def withdraw(self, call_id: str, agent_id: str, now: float) -> Call | None: ...
    async def hangup(self, call_id: str, now: float, ending: Ending | None = None
                     ) -> Call | None:
        """A connected call over; `ending`, how it ended, is kept (`ending`)."""
    async def requeue(self, call_id: str, agent_id: str, now: float) -> Call | None: ...
    async def join(
        self, invitation_id: str, agent_id: str, now: float, offer: int | None = None
    ) -> Call: ...
    async def leave(self, call_id: str, agent_id: str, now: float) -> Call | None: ...
    async def hand_off(self, call_id: str, terminal_id: str, visitor_id: str,
                       now: float = 0.0) -> Call:
        """The terminal's waiting call goes over to a phone (`Call.visitor`), keeping its
        place; refused (`routing.handoff_refusal`) unless waiting and not handed off. A
        cluster's node keeps the call among its recent hand-offs (at `now`), whose log its
        survivor checks if it dies (`keys.recent_handoffs`)."""


class RoutingQueries(Protocol):
    """Reads of the shared routing state; they change nothing."""

    async def check_open(self, queue: str) -> str | None: ...
    async def get_call(self, call_id: str) -> Call | None: ...
    async def get_agent(self, agent_id: str) -> Agent | None: ...
    async def position(self, call_id: str) -> int | None: ...
    async def waiting(self, queue: str) -> list[tuple[str, str]]:
        """(call id, the caller's participant id) of the queue's waiting calls, in order."""
    async def snapshot(self, queue: str, now: float) -> QueueSnapshot: ...
    async def snapshots(self, queues: Sequence[str], now: float) -> list[QueueSnapshot]:
        """Several queues' figures read in one moment (one round trip on Redis)."""
    async def calls_of_terminal(self, terminal_id: str) -> list[Call]: ...
    async def ending(self, call_id: str) -> Ending | None:
        """How the call ended, as the transaction that ended it kept it (None: live,
        unknown, ended without one, logged since on one node, or longer ago than
        `ENDINGS_KEPT_S`)."""
    def ending_logged(self, call_id: str) -> None:
        """The ending step's events are in the log: its `Ending` is needed no more. One
        node drops it (its memory would grow with every call); Redis keeps it until it
        expires (a write saved on every end)."""


class Router(RoutingTransactions, RoutingQueries, Protocol):
    """The routing contract: both routers (`memory.MemoryRouter`, `cluster.RedisRouter`)
    implement both halves and are held to the same answers by the shared tests."""


class Sink(Protocol):
    """One live connection's outbound side; never blocks the sender."""

    def send(self, payload: bytes) -> None: ...
    def close(self, code: int, reason: str) -> None: ...


class MessageBus(Protocol):
    """Delivers encoded messages to a principal's live connection, wherever it is."""

    def attach(self, principal: str, role: str, sink: Sink) -> None:
        """Route the principal's messages to `sink`; an older connection is closed (4409)."""

    def detach(self, principal: str, sink: Sink) -> None: ...
    async def baseline(self, principal: str) -> None:
        """After `attach` and `welcome`, before the re-sync: the connection's line starts
        with the re-sync (`resync`'s number): it hears the numbered messages decided from
        now on, in order, after the re-sync; older ones arriving after this are stale."""

    async def resync(self, principal: str) -> None:
        """Before a re-sync reads where the principal stands (`signaling.resume`): take its
        next number for the re-sync's messages (`order.took`), so that a decision made
        after those reads (a hang-up crossing a resume) is heard after them, whichever
        node made it. One node numbers nothing (`Outbox.send`'s `still` orders it)."""

    async def send(self, principal: str, payload: bytes) -> None: ...
    async def send_numbered(self, principal: str, payloads: Sequence[bytes], *,
                            seq: int | None = None, as_of: int | None = None) -> None:
        """Messages in the cluster's order (`signaling/order.py`): those a routing
        transaction numbered `seq` for the principal (none: the number is only filled),
        a state `as_of` its last number, or (neither) unnumbered events, heard after the
        principal's numbers taken before they were sent and what is held for the
        connection; one node delivers them as they come.
        (`send` is the fast path for relayed frames: they never wait.)"""

    async def broadcast(self, roles: frozenset[str], payload: bytes) -> None: ...
    async def kick(self, principal: str, code: int, reason: str) -> None:
        """Close the principal's connection (e.g. a revoked terminal)."""

    def connected(self) -> set[str]:
        """The principals with a connection on this node."""

    def close_local(self, principal: str, code: int, reason: str) -> None:
        """Close the principal's connection if it is on this node."""


TimerHandler = Callable[[str, dict[str, Any]], Awaitable[None]]


class Scheduler(Protocol):
    """Named one-shot timers that fire exactly once; scheduling a key again replaces it.
    A fired timer runs the `TimerHandler` the scheduler was built with."""

    async def change(self, cancel: Sequence[str], schedule: Sequence[Timer]) -> None:
        """Cancel `cancel`, then set `schedule`, in that order: a step's timers at once
        (one round trip on a shared scheduler, where one by one took one each)."""

    async def close(self) -> None: ...


class Presence(msgspec.Struct, kw_only=True):
    """A principal's logical connection, which survives reconnects within the grace."""

    principal: str
    resume: str
    epoch: int
    connected: bool = True
    replaced: bool = False  # (from `connect`) another connection's presence, not resumed


class Presences(Protocol):
    """Resume tokens and who is connected."""

    async def connect(self, principal: str, resume: str | None) -> tuple[Presence, bool]: ...
    async def disconnect(self, principal: str, epoch: int) -> bool: ...
    async def get(self, principal: str) -> Presence | None: ...
    async def drop(self, principal: str, epoch: int) -> bool: ...


class Ticket(msgspec.Struct, frozen=True, kw_only=True):
    """What a ticket opens: one waiting call of one terminal, for one phone."""

    call_id: str
    terminal_id: str
    visitor_id: str  # the phone's id once it opened the ticket (its principal: visitor:<id>)
    expires_at: dt.datetime
    used: bool = False
    welcomed: bool = False  # the phone that opened it got its `welcome` (and resume token)


class HandoffTickets(Protocol):
    """Where tickets are kept, by the SHA-256 of the ticket (`signaling.handoff`;
    implemented by `Database`)."""

    async def add_handoff_ticket(self, ticket_hash: str, ticket: Ticket) -> None: ...
    async def handoff_ticket(self, ticket_hash: str) -> Ticket | None: ...
    async def use_handoff_ticket(self, ticket_hash: str) -> bool:
        """Mark it used; False if it already was (single use, whichever node asks)."""
    async def welcome_handoff_ticket(self, ticket_hash: str) -> None:
        """The phone that opened it was sent its `welcome`: from now on only that phone's
        resume token lets a phone in with it."""
    async def visitor_call(self, visitor_id: str) -> str | None:
        """The call the phone `visitor:<visitor_id>` took over, from its used ticket."""


NOT_LOGGED_YET = "ended"
"""`CallEnd.reason` of a call gone from routing whose log is still open."""


@dataclass(frozen=True)
class CallEnd:
    """How a call ended, as the session log has it (`SessionLog.call_end`)."""

    session_id: str
    reason: str


class SessionLog(Protocol):
    """The durable session log (SQL)."""

    async def append(self, events: Sequence[LogEvent]) -> None: ...
    async def session_members(self, session_id: str) -> set[str] | None: ...
    async def close_lost(self, call_id: str, now: dt.datetime,
                         alive: Callable[[str], Awaitable[bool]],
                         endings: Callable[[str], Awaitable[Ending | None]]) -> bool:
        """Close the call's session if it is still open and the call not `alive` (asked
        under the session's lock): as routing kept its end (`endings`), else
        `interrupted`; whether it did."""
        ...

    async def open_calls(self, call_ids: Sequence[str]) -> set[str]:
        """Those of the calls whose session the log has open (one read)."""
        ...

    async def sessions_with(self, event_type: str, session_ids: Sequence[str]) -> set[str]:
        """Those of the sessions whose log has an event of that type (one read)."""
        ...

    async def call_end(self, call_id: str, principal: str) -> CallEnd | None:
        """How the call ended, for `principal` if it was the call's terminal or took part
        in it (None: an unknown call, or not theirs). Asked once routing has the call gone:
        a log that has not caught up yet says `ended`."""
        ...
