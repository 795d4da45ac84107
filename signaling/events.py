"""Session-log events: the durable record of everything that happens to a call.

The switchboard appends one `LogEvent` per state change *before* it tells any
client; the storage layer keeps them append-only and projects them onto the
`sessions` row (state, wait and talk times, end reason...). The event types
below are the contract between the two.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import msgspec

# Call lifecycle (session_id set).
QUEUED: Final = "queued"  # data: queue, terminal_id, terminal_name, site_id, site_name, enterprise?
REJECTED: Final = "rejected"  # data: reason (queue closed / nobody logged in)
OFFERED: Final = "offered"  # data: agent_id, queue
MISSED: Final = "missed"  # data: agent_id (ring timeout)
DECLINED: Final = "declined"  # data: agent_id
WITHDRAWN: Final = "withdrawn"  # data: agent_id, reason (timeout, taken, cancelled, ...)
OVERFLOWED: Final = "overflowed"  # data: to (queue id)
ANSWERED: Final = "answered"  # data: agent_id, agent_name, wait_s
PARTICIPANT_JOINED: Final = "participant_joined"  # data: participant_id, role, principal_id, name
PARTICIPANT_LEFT: Final = "participant_left"  # data: participant_id, reason
REQUEUED: Final = "requeued"  # data: agent_id, reason
ENDED: Final = "ended"  # data: reason, by
ABANDONED: Final = "abandoned"  # data: reason (cancelled, terminal_lost, ...)
INTERRUPTED: Final = "interrupted"  # data: {} (server restarted with the session open)
CHAT: Final = "chat"  # data: from (participant id), name, text
RATING: Final = "rating"  # data: score (1-5), comment
WRAPUP: Final = "wrapup"  # data: agent_id, outcome, notes
# Recording of a connected session (issue 4); `recorder` is the recorder's participant id.
RECORDING_STARTED: Final = "recording_started"  # data: recorder, segment
RECORDING_STOPPED: Final = "recording_stopped"  # data: recorder, reason
RECORDING_INTERRUPTED: Final = "recording_interrupted"  # data: recorder, reason (recorder lost)
RECORDING_FAILED: Final = "recording_failed"  # data: reason, recorder?, participant_id?
RECORDING_DELETED: Final = "recording_deleted"  # data: recording_id, path, reason (retention)
INVITED: Final = "invited"  # data: invitation_id, queue, specialist, transfer (call.invite)
INVITE_CANCELLED: Final = "invite_cancelled"  # data: invitation_id, reason
# Agent events (session_id None, actor = agent id).
AGENT_STATUS: Final = "agent_status"  # data: old, new, reason

CALL_EVENTS: Final = frozenset(
    {
        QUEUED, REJECTED, OFFERED, MISSED, DECLINED, WITHDRAWN, OVERFLOWED, ANSWERED,
        PARTICIPANT_JOINED, PARTICIPANT_LEFT, REQUEUED, ENDED, ABANDONED, INTERRUPTED,
        CHAT, RATING, WRAPUP, RECORDING_STARTED, RECORDING_STOPPED, RECORDING_INTERRUPTED,
        RECORDING_FAILED, RECORDING_DELETED,
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
