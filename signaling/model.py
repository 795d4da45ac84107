"""Plain values of the routing core: queue settings, agents and calls."""

from __future__ import annotations

import enum
from typing import Any

import msgspec


class AgentState(enum.StrEnum):
    """What a specialist is doing, as the ACD sees it."""

    AWAY = "away"
    AVAILABLE = "available"
    RINGING = "ringing"
    IN_CALL = "in_call"
    WRAP_UP = "wrap_up"


class CallState(enum.StrEnum):
    QUEUED = "queued"
    RINGING = "ringing"
    CONNECTED = "connected"
    ENDED = "ended"


class QueueConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One line of service; the `[[queues]]` table of the configuration."""

    id: str
    name: str
    name_en: str = ""
    target_answer_s: float = 900.0
    ring_timeout_s: float = 20.0
    wrapup_s: float = 30.0
    strategy: str = "longest-idle"
    overflow_after_s: float | None = None
    overflow_to: str | None = None
    open: bool = True
    priority: int = 0
    decline_block_s: float = 60.0  # a decline keeps that specialist out of that call this long
    hours: str | None = None  # "09:00-12:00,13:30-17:30" on working days; None: always open
    slot_minutes: int = 15  # appointment slots within the hours
    appointments_per_slot: int = 2  # bookings one slot holds; 0: no appointments


class Agent(msgspec.Struct, kw_only=True):
    """A logged-in specialist. `skills` maps queue id to level (1 = preferred)."""

    id: str
    name: str
    skills: dict[str, int]
    department: str | None = None
    state: AgentState = AgentState.AWAY
    connected: bool = True
    idle_since: float = 0.0
    calls_answered: int = 0
    missed_streak: int = 0
    call_id: str | None = None
    last_offered: float = 0.0  # when a call last rang them (login time before): round-robin


class Call(msgspec.Struct, kw_only=True):
    """A terminal's request for a consultation, from queueing to its end.

    `context` carries what a specialist is shown on the offer (terminal, site,
    enterprise) so that any node can build it.
    """

    id: str
    session_id: str
    queue: str
    terminal_id: str
    enqueued_at: float
    priority: int = 0
    state: CallState = CallState.QUEUED
    ringing_agent: str | None = None
    offer_number: int = 0  # offers made so far: the number of the current (or last) offer
    declined_by: list[str] = msgspec.field(default_factory=list)
    missed_by: list[str] = msgspec.field(default_factory=list)
    # specialist -> when their decline stops keeping them out of this call (`declined_by`:
    # never offered it, e.g. the members of the session an invitation joins)
    blocked: dict[str, float] = msgspec.field(default_factory=dict)
    overflowed: bool = False
    agents: list[str] = msgspec.field(default_factory=list)
    answered_at: float | None = None
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    # An invitation of another department into a connected call (`call.invite`/`transfer`):
    joins: str | None = None  # the connected call the answering specialist joins
    target_agent: str | None = None  # only this specialist may be offered it (named invite)
    transfer_from: str | None = None  # this specialist leaves once the invitee joins
    # The phone that took the call over from its terminal (`call.handoff`): the caller is
    # then `visitor:<id>`; the terminal is free for its next visitor.
    visitor: str | None = None

    @property
    def is_invitation(self) -> bool:
        return self.joins is not None

    def rings(self, agent_id: str, offer: int | None) -> bool:
        """Ringing this specialist, as offer number `offer` if one is named: an answer to
        an offer already withdrawn must not take the call's next offer to them, which
        they may not have seen yet."""
        return self.ringing_agent == agent_id and offer in (None, self.offer_number)


class Offer(msgspec.Struct, kw_only=True, frozen=True):
    """A call now ringing one specialist."""

    call_id: str
    agent_id: str
    queue: str
    offer: int  # `Call.offer_number` at this offer: an answer naming an older one is stale
    via_overflow: bool = False


class QueueSnapshot(msgspec.Struct, kw_only=True):
    """Live figures of one queue, as routing state knows them."""

    id: str
    waiting: int
    longest_wait_s: float
    available: int
    busy: int
    away: int
    logged_in: int
    avg_handle_s: float | None
