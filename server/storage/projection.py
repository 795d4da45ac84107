"""The rules that fold session-log events onto `sessions` and `session_participants`.

The payload of each event kind is decoded with its struct in `signaling.events`,
the one definition the producers use too. I/O-free: `Projection` works on an
in-memory copy of the rows one append batch touches; the session log loads
them, applies every event in order and writes back what changed, all in one
transaction. Any rule broken raises a
typed error, so the whole batch is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import msgspec

from server.storage.errors import AlreadyExists, InvalidEvent, SessionClosed, UnknownSession
from server.storage.schema import sessions
from signaling import events as ev
from signaling.events import LogEvent

Row = dict[str, Any]
ParticipantKey = tuple[str, str]
# An `answered` as the log knows it: the specialist and the offer they answered. Logged
# once: the same again is a fenced node's append still under way when the survivor logged
# that answer for it (`offers.answer_again`), not a second answer.
Answer = tuple[str, int]
Loaded = tuple[dict[str, Row], dict[ParticipantKey, Row], dict[str, set[Answer]]]

# Columns an append may change (never a session's ids or creation time); a participant's
# join time only to an earlier join committed later (`Projection._join`)
SESSION_MUTABLE: Final = tuple(c.name for c in sessions.c
                               if c.name not in ("id", "call_id", "created_at"))
PARTICIPANT_MUTABLE: Final = ("joined_at", "left_at", "left_reason")
SESSION_KEYS: Final = ("id",)
PARTICIPANT_KEYS: Final = ("session_id", "participant_id")
_P = TypeVar("_P", bound=ev.Payload)

# Events that move a session's state; refused once the session is final.
# Transitions a closed session refuses. A late `answered` is not among them: a specialist's
# accept and the caller's hang-up can race (on two nodes, or two tasks of one), and the log
# must take both in whichever order they commit.
LIFECYCLE = frozenset({ev.REQUEUED, ev.ENDED, ev.ABANDONED, ev.REJECTED, ev.INTERRUPTED})


def _data(event: LogEvent, kind: type[_P]) -> _P:
    try:
        return ev.decode(event, kind)
    except ev.InvalidPayload as exc:
        raise InvalidEvent(str(exc)) from None


def _seconds(later: dt.datetime, earlier: dt.datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())


def logged_answers(pairs: Iterable[Sequence[Any]]) -> set[Answer]:
    """The answers (agent, offer) read from the log; one without both (an `answered`
    logged before answers carried their offer) is never the same as another."""
    return {(agent, offer) for agent, offer in pairs if isinstance(agent, str)
            and isinstance(offer, int) and not isinstance(offer, bool)}


def check_event(event: LogEvent) -> None:
    """Refuse what no rule could store: no type, naive time, a call event without session."""
    if not isinstance(event, LogEvent):
        raise InvalidEvent(f"not a LogEvent: {event!r}")
    if not event.type:
        raise InvalidEvent("event without a type")
    if event.ts.utcoffset() is None:
        raise InvalidEvent(f"{event.type} event: ts must be timezone-aware")
    try:
        msgspec.json.encode(event.data)
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidEvent(f"{event.type} event: data is not JSON: {exc}") from None
    if event.type in ev.CALL_EVENTS and not event.session_id:
        raise InvalidEvent(f"{event.type} event without session_id")
    if event.type == ev.QUEUED and not event.call_id:
        raise InvalidEvent("queued event without call_id")


# Events whose projection reads the session's participants (a join, a leave, a hand-off to
# a phone, which joins the visitor): their sessions' participant rows are loaded first, so
# that a second join (a reconnect, a phone opening its ticket again) updates the row
PEOPLE_EVENTS: frozenset[str] = frozenset({ev.PARTICIPANT_JOINED, ev.PARTICIPANT_LEFT,
                                           ev.HANDED_OFF})


@dataclass
class Mark:
    """Where a `Projection` stood before a batch: what `undo` restores."""

    sessions: dict[str, Row]  # copies of the rows of the batch's sessions that existed
    participants: dict[ParticipantKey, Row]  # and of those sessions' participants
    new_sessions: int
    dirty_sessions: set[str]
    new_participants: int
    dirty_participants: set[ParticipantKey]
    answers: dict[str, set[Answer]]  # of every session of the batch


class Projection:
    """Working copy of the sessions and participants of one append batch (or of a group
    of batches committed together, each taken back alone when a rule refuses it)."""

    def __init__(self, sessions: dict[str, Row], participants: dict[ParticipantKey, Row],
                 answers: dict[str, set[Answer]] | None = None):
        self.sessions = sessions
        self.participants = participants
        # sessions answered in this group: the answers logged (read only for those answered
        # before, `group.answered_again`) and those applied since
        self.answers = answers if answers is not None else {}
        self.new_sessions: list[str] = []
        self.dirty_sessions: set[str] = set()
        self.new_participants: list[ParticipantKey] = []
        self.dirty_participants: set[ParticipantKey] = set()

    def mark(self, session_ids: set[str]) -> Mark:
        """Before a batch touching `session_ids`: what `undo` needs to take it back."""
        return Mark({sid: dict(self.sessions[sid]) for sid in session_ids
                     if sid in self.sessions},
                    {key: dict(row) for key, row in self.participants.items()
                     if key[0] in session_ids},
                    len(self.new_sessions), set(self.dirty_sessions),
                    len(self.new_participants), set(self.dirty_participants),
                    {sid: set(self.answers.get(sid, ())) for sid in session_ids})

    def undo(self, mark: Mark) -> None:
        """Back to where `mark` was taken: the batch since then refused, none of it kept."""
        for sid in self.new_sessions[mark.new_sessions:]:
            del self.sessions[sid]
        del self.new_sessions[mark.new_sessions:]
        for key in self.new_participants[mark.new_participants:]:
            del self.participants[key]
        del self.new_participants[mark.new_participants:]
        self.sessions.update(mark.sessions)
        self.participants.update(mark.participants)
        self.answers.update(mark.answers)
        self.dirty_sessions, self.dirty_participants = (mark.dirty_sessions,
                                                        mark.dirty_participants)

    def reload(self, loaded: Loaded) -> None:
        """Rows read again once their sessions were locked (`group.answered_again`), before
        any event is applied: newer than the first read's, which on PostgreSQL may predate a
        commit it waited for."""
        sessions, participants, answers = loaded
        self.sessions.update(sessions)
        for key in [key for key in self.participants if key[0] in sessions]:
            del self.participants[key]
        self.participants.update(participants)
        self.answers.update(answers)

    def logged_already(self, event: LogEvent) -> bool:
        """An `answered` whose specialist and offer the session's log has (`Answer`): left
        out, and the rest of its batch applied. One without an offer is always applied."""
        if event.type != ev.ANSWERED or not self.answers.get(event.session_id or ""):
            return False
        data = _data(event, ev.Answered)
        return (data.agent_id, data.offer) in self.answers[event.session_id or ""]

    def apply(self, event: LogEvent) -> str | None:
        """Fold one event in; returns the call id to store with it."""
        check_event(event)
        if event.session_id is None:
            return event.call_id
        if event.type == ev.QUEUED:
            self._queued(event.session_id, event)
            return event.call_id
        session = self.sessions.get(event.session_id)
        if session is None:
            raise UnknownSession(f"{event.type} event for unknown session {event.session_id!r}")
        if event.type in LIFECYCLE and session["state"] in ev.FINAL_STATES:
            raise SessionClosed(
                f"{event.type} event for session {event.session_id!r} already {session['state']}"
            )
        rule = _RULES.get(event.type)
        if rule is not None:
            rule(self, session, event)
            if event.session_id not in self.new_sessions:
                self.dirty_sessions.add(event.session_id)
        return event.call_id or str(session["call_id"])

    def _queued(self, session_id: str, event: LogEvent) -> None:
        if session_id in self.sessions:
            raise AlreadyExists(f"session {session_id!r} already queued")
        data = _data(event, ev.Queued)
        enterprise = data.enterprise or ev.EnterpriseData()
        self.sessions[session_id] = {
            "id": session_id,
            "call_id": event.call_id,
            "queue": data.queue,
            "state": ev.STATE_QUEUED,
            "site_id": data.site_id,
            "site_name": data.site_name,
            "terminal_id": data.terminal_id,
            "terminal_name": data.terminal_name,
            "enterprise_name": enterprise.name,
            "enterprise_uscc": enterprise.uscc,
            "created_at": event.ts,
            "answered_at": None,
            "ended_at": None,
            "wait_s": None,
            "talk_s": None,
            "end_reason": None,
            "specialist_id": None,
            "specialist_name": None,
            "node_id": data.node_id,
            "outcome": None,
            "notes": None,
            "rating": None,
            "rating_comment": None,
        }
        self.new_sessions.append(session_id)

    def _answered(self, session: Row, event: LogEvent) -> None:
        data = _data(event, ev.Answered)
        if data.offer is not None:
            self.answers.setdefault(session["id"], set()).add((data.agent_id, data.offer))
        if session["state"] not in ev.FINAL_STATES:  # a late answer does not reopen it
            session["state"] = ev.STATE_CONNECTED
        if session["answered_at"] is None:  # the first answer is the one the caller waited for
            session["answered_at"] = event.ts
            session["wait_s"] = (
                data.wait_s
                if data.wait_s is not None
                else _seconds(event.ts, session["created_at"])
            )
            session["specialist_id"] = data.agent_id
            session["specialist_name"] = data.agent_name

    def _requeued(self, session: Row, event: LogEvent) -> None:
        session["state"] = ev.STATE_QUEUED

    def _close(self, session: Row, event: LogEvent, state: str, reason: str | None) -> None:
        session["state"] = state
        session["ended_at"] = event.ts
        session["end_reason"] = reason

    def _talk(self, session: Row, event: LogEvent) -> None:
        if session["answered_at"] is not None:
            session["talk_s"] = _seconds(event.ts, session["answered_at"])

    def _ended(self, session: Row, event: LogEvent) -> None:
        self._close(session, event, ev.STATE_ENDED, _data(event, ev.Ended).reason)
        self._talk(session, event)

    def _abandoned(self, session: Row, event: LogEvent) -> None:
        self._close(session, event, ev.STATE_ABANDONED, _data(event, ev.Abandoned).reason)

    def _rejected(self, session: Row, event: LogEvent) -> None:
        self._close(session, event, ev.STATE_REJECTED, _data(event, ev.Rejected).reason)

    def _interrupted(self, session: Row, event: LogEvent) -> None:
        self._close(session, event, ev.STATE_INTERRUPTED, ev.INTERRUPTED)
        self._talk(session, event)

    def _joined(self, session: Row, event: LogEvent) -> None:
        self._join(session, event, _data(event, ev.ParticipantJoined))

    def _handed_off(self, session: Row, event: LogEvent) -> None:
        """The phone that took the call over is a participant from then on (it may rate);
        the session keeps the terminal's site and terminal."""
        data = _data(event, ev.HandedOff)
        self._join(session, event, ev.ParticipantJoined(
            participant_id=data.participant_id, role="visitor", principal_id=data.visitor_id,
            name=data.name))

    def _join(self, session: Row, event: LogEvent, data: ev.ParticipantJoined) -> None:
        key = (session["id"], data.participant_id)
        known = self.participants.get(key)
        if known is not None:  # back after a reconnect: the first join time stays
            # Two steps may both join one participant (the hand-off and the answer, the
            # visitor), each committed by its node: the row says the earlier join, and a
            # leave later than this join stays.
            known["joined_at"] = min(known["joined_at"], event.ts)
            left = known["left_at"]
            if session["state"] not in ev.FINAL_STATES and (left is None or left <= event.ts):
                known.update(left_at=None, left_reason=None)
            if key not in self.new_participants:
                self.dirty_participants.add(key)
            return
        self.participants[key] = {
            "session_id": session["id"],
            "participant_id": data.participant_id,
            "role": data.role,
            "principal_id": data.principal_id,
            "name": data.name,
            "joined_at": event.ts,
            "left_at": None,
            "left_reason": None,
        }
        self.new_participants.append(key)

    def _left(self, session: Row, event: LogEvent) -> None:
        data = _data(event, ev.ParticipantLeft)
        key = (session["id"], data.participant_id)
        known = self.participants.get(key)
        if known is None:  # the join is still being committed by a racing transaction
            role, _, principal = data.participant_id.partition(":")
            self.participants[key] = {
                "session_id": session["id"],
                "participant_id": data.participant_id,
                "role": role,
                "principal_id": principal or None,
                "name": None,
                "joined_at": event.ts,
                "left_at": event.ts,
                "left_reason": data.reason,
            }
            self.new_participants.append(key)
            return
        known.update(left_at=event.ts, left_reason=data.reason)
        if key not in self.new_participants:
            self.dirty_participants.add(key)

    def _rating(self, session: Row, event: LogEvent) -> None:
        data = _data(event, ev.Rating)
        session["rating"] = data.score
        session["rating_comment"] = data.comment

    def _wrapup(self, session: Row, event: LogEvent) -> None:
        data = _data(event, ev.Wrapup)
        session["outcome"] = data.outcome
        session["notes"] = data.notes


# Unbound, at module level: a table of bound methods on each projection would make every
# append batch a reference cycle, garbage only the cycle collector frees (issue 16).
_RULES: dict[str, Callable[[Projection, Row, LogEvent], None]] = {
    ev.ANSWERED: Projection._answered,
    ev.REQUEUED: Projection._requeued,
    ev.ENDED: Projection._ended,
    ev.ABANDONED: Projection._abandoned,
    ev.REJECTED: Projection._rejected,
    ev.INTERRUPTED: Projection._interrupted,
    ev.PARTICIPANT_JOINED: Projection._joined,
    ev.PARTICIPANT_LEFT: Projection._left,
    ev.RATING: Projection._rating,
    ev.WRAPUP: Projection._wrapup,
    ev.HANDED_OFF: Projection._handed_off,
}
