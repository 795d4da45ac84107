"""Session-log events: the durable record of everything that happens to a call.

The switchboard appends one `LogEvent` per state change *before* it tells any
client; the storage layer keeps them append-only and projects them onto the
`sessions` row (state, wait and talk times, end reason...). Each kind's payload
(`LogEvent.data`) is one struct below, the contract between the two: producers
build it (`Outbox.event`), the projection decodes it (`decode`). Fields with a
default are absent from older stored events; `omit_defaults` keeps optional
fields out of the stored JSON unless set.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Final, TypeVar

import msgspec

# Call lifecycle (session_id set).
QUEUED: Final = "queued"
REJECTED: Final = "rejected"
OFFERED: Final = "offered"
MISSED: Final = "missed"
DECLINED: Final = "declined"
WITHDRAWN: Final = "withdrawn"
OVERFLOWED: Final = "overflowed"
ANSWERED: Final = "answered"
PARTICIPANT_JOINED: Final = "participant_joined"
PARTICIPANT_LEFT: Final = "participant_left"
REQUEUED: Final = "requeued"
ENDED: Final = "ended"
ABANDONED: Final = "abandoned"
INTERRUPTED: Final = "interrupted"
CHAT: Final = "chat"
RATING: Final = "rating"
WRAPUP: Final = "wrapup"
RECORDING_STARTED: Final = "recording_started"
RECORDING_STOPPED: Final = "recording_stopped"
RECORDING_INTERRUPTED: Final = "recording_interrupted"
RECORDING_FAILED: Final = "recording_failed"
RECORDING_DELETED: Final = "recording_deleted"
INVITED: Final = "invited"
INVITE_CANCELLED: Final = "invite_cancelled"
HANDED_OFF: Final = "handed_off"
# Agent events (session_id None, actor = the specialist's participant id).
AGENT_STATUS: Final = "agent_status"

CALL_EVENTS: Final = frozenset(
    {
        QUEUED, REJECTED, OFFERED, MISSED, DECLINED, WITHDRAWN, OVERFLOWED, ANSWERED,
        PARTICIPANT_JOINED, PARTICIPANT_LEFT, REQUEUED, ENDED, ABANDONED, INTERRUPTED,
        CHAT, RATING, WRAPUP, RECORDING_STARTED, RECORDING_STOPPED, RECORDING_INTERRUPTED,
        RECORDING_FAILED, RECORDING_DELETED, HANDED_OFF,
    }
)

# Session states as projected by the log.
STATE_QUEUED: Final = "queued"
STATE_CONNECTED: Final = "connected"
STATE_ENDED: Final = "ended"
STATE_ABANDONED: Final = "abandoned"
STATE_REJECTED: Final = "rejected"
STATE_INTERRUPTED: Final = "interrupted"
FINAL_STATES: Final = frozenset({STATE_ENDED, STATE_ABANDONED, STATE_REJECTED, STATE_INTERRUPTED})


class LogEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the session log; `ts` is timezone-aware UTC."""

    type: str
    ts: dt.datetime
    session_id: str | None = None
    call_id: str | None = None
    actor: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class Payload(msgspec.Struct, frozen=True, kw_only=True):
    """The data of one kind of event; `TYPE` is the `LogEvent.type` it is stored under."""

    TYPE: ClassVar[str]


class EnterpriseData(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    name: str | None = None
    uscc: str | None = None


class Queued(Payload, frozen=True, kw_only=True):
    TYPE = QUEUED
    queue: Annotated[str, msgspec.Meta(min_length=1)]
    terminal_id: str | None = None
    terminal_name: str | None = None
    site_id: str | None = None
    site_name: str | None = None
    enterprise: EnterpriseData | None = None
    node_id: str | None = None


class Rejected(Payload, frozen=True, kw_only=True):
    """Refused at the request (queue closed, nobody logged in, no recorder)."""

    TYPE = REJECTED
    reason: str | None = None


class Offered(Payload, frozen=True, kw_only=True):
    TYPE = OFFERED
    agent_id: str
    offer: int
    queue: str
    via_overflow: bool


class Missed(Payload, frozen=True, kw_only=True):
    """The offer rang out (ring timeout)."""

    TYPE = MISSED
    agent_id: str
    offer: int


class Declined(Payload, frozen=True, kw_only=True):
    TYPE = DECLINED
    agent_id: str
    offer: int


class Withdrawn(Payload, frozen=True, kw_only=True):
    """An offer is over without an answer: timeout, cancelled, agent_lost, declined..."""

    TYPE = WITHDRAWN
    agent_id: str
    offer: int
    reason: str


class Overflowed(Payload, frozen=True, kw_only=True):
    TYPE = OVERFLOWED
    to: str | None


class Answered(Payload, frozen=True, kw_only=True):
    TYPE = ANSWERED
    agent_id: str
    agent_name: str | None = None
    offer: int | None = None
    wait_s: Annotated[float, msgspec.Meta(ge=0)] | None = None


class ParticipantJoined(Payload, frozen=True, kw_only=True, omit_defaults=True):
    TYPE = PARTICIPANT_JOINED
    participant_id: Annotated[str, msgspec.Meta(min_length=1)]
    role: str
    principal_id: str | None = None
    name: str | None = None
    invitation_id: str | None = None  # joined by accepting an invitation (`call.invite`)


class ParticipantLeft(Payload, frozen=True, kw_only=True):
    TYPE = PARTICIPANT_LEFT
    participant_id: str
    reason: str | None = None


class Requeued(Payload, frozen=True, kw_only=True):
    TYPE = REQUEUED
    agent_id: str | None = None
    reason: str | None = None


class Ended(Payload, frozen=True, kw_only=True):
    TYPE = ENDED
    reason: str | None = None
    by: str | None = None


class Abandoned(Payload, frozen=True, kw_only=True):
    """The caller left (or was lost) before being served."""

    TYPE = ABANDONED
    reason: str | None = None


class Interrupted(Payload, frozen=True, kw_only=True):
    """A server restarted with the session open."""

    TYPE = INTERRUPTED


class Chat(Payload, frozen=True, kw_only=True, rename={"sender": "from"}):
    TYPE = CHAT
    sender: str
    name: str
    text: str


class Rating(Payload, frozen=True, kw_only=True):
    TYPE = RATING
    score: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: str | None = None


class Wrapup(Payload, frozen=True, kw_only=True):
    TYPE = WRAPUP
    agent_id: str | None = None
    outcome: str | None = None
    notes: str | None = None


class RecordingStarted(Payload, frozen=True, kw_only=True):
    """`recorder` is the recorder's participant id; `segment` counts its recorders."""

    TYPE = RECORDING_STARTED
    recorder: str
    segment: int


class RecordingStopped(Payload, frozen=True, kw_only=True):
    TYPE = RECORDING_STOPPED
    recorder: str
    reason: str


class RecordingInterrupted(Payload, frozen=True, kw_only=True, omit_defaults=True):
    """The recorder was lost (or reconnected) mid-session; `segment`, the one it cut (not
    in events logged before it was added, nor when a lost recorder names a gap of a call
    that is over: its last `recording_started` there)."""

    TYPE = RECORDING_INTERRUPTED
    recorder: str
    reason: str
    segment: int | None = None


class RecordingFailed(Payload, frozen=True, kw_only=True, omit_defaults=True):
    """No recorder for the session, or one party's segment failed (with its details)."""

    TYPE = RECORDING_FAILED
    reason: str
    recorder: str | None = None
    participant_id: str | None = None
    segment: int | None = None


class RecordingDeleted(Payload, frozen=True, kw_only=True):
    """Retention removed a recording file."""

    TYPE = RECORDING_DELETED
    recording_id: int | str
    path: str
    reason: str
    retention_days: int | None = None


class Invited(Payload, frozen=True, kw_only=True):
    TYPE = INVITED
    invitation_id: str
    queue: str
    specialist: str | None
    transfer: bool


class InviteCancelled(Payload, frozen=True, kw_only=True):
    TYPE = INVITE_CANCELLED
    invitation_id: str
    reason: str


class HandedOff(Payload, frozen=True, kw_only=True):
    """The terminal's waiting call went over to a phone (`call.handoff`): the phone is the
    caller now; the session keeps the terminal's site and terminal."""

    TYPE = HANDED_OFF
    terminal_id: str
    participant_id: Annotated[str, msgspec.Meta(min_length=1)]  # the phone: visitor:<id>
    visitor_id: str
    name: str | None = None


class AgentStatus(Payload, frozen=True, kw_only=True, omit_defaults=True):
    """`old` is set only when the specialist leaves (`new` = offline)."""

    TYPE = AGENT_STATUS
    agent_id: str
    old: str | None = None
    new: str
    reason: str


class InvalidPayload(ValueError):
    """Stored data that does not fit its event kind."""


P = TypeVar("P", bound=Payload)


def log_event(payload: Payload, ts: dt.datetime, *, session_id: str | None = None,
              call_id: str | None = None, actor: str | None = None) -> LogEvent:
    """The stored form of one typed event."""
    return LogEvent(type=payload.TYPE, ts=ts, session_id=session_id, call_id=call_id,
                    actor=actor, data=msgspec.to_builtins(payload))


def decode(event: LogEvent, kind: type[P]) -> P:
    """The typed payload of a stored event; raises `InvalidPayload`."""
    try:
        return msgspec.convert(event.data, kind)
    except msgspec.ValidationError as exc:
        raise InvalidPayload(f"{event.type} event: bad data: {exc}") from None
