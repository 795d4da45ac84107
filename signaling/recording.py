"""The switchboard's recording rules: who records a session, and what happens when it fails.

A recorder is a hidden participant of a connected call (`recorder:<name>`): when a call
connects it is given to the least loaded live recorder (`RecorderPool`), listed in
`call.connected` and told `record.start`; each party then offers it its tracks over the
ordinary `rtc.*` relay. A recorder that goes away interrupts its sessions; each is handed
to another recorder at once (the parties get `participant.left` then `participant.joined`
and offer again, so the rest lands in a new segment) or waits for the next one to join.
Every step is a session-log event, so an unrecorded stretch is never silent. Every
function is a no-op when recording is off (`Services.recording` is None).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from . import events as ev
from . import messages as m
from . import timers
from .errors import Refused
from .identity import Identity, members_of
from .model import Call, CallState
from .outbox import Outbox
from .parties import people, recorder
from .recorders import (
    DEFAULT_CAPACITY,
    Assignment,
    RecordingCatalog,
    RecordingSetup,
    SegmentRefused,
    Unassigned,
)
from .services import Services

log = logging.getLogger(__name__)

UNAVAILABLE: Final = "recorder_unavailable"
GAP_LOOKBACK_S: Final = 120.0
"""How far back a lost recorder's sessions are looked at for gaps nobody named: its loss is
noticed seconds after it died (a dead node's heartbeat, its takeover on a loaded survivor),
and a live recorder closes a segment within seconds of its call's end (`INTAKE_END_S`)."""
HAND_ON_AT_ONCE: Final = 8
"""Sessions of a lost or reconnected recorder handed on together: one by one, each a few
round trips to Redis and a catalog write on a loaded survivor, a reconnected rec1's
hand-over took 7.7 s, and a call answered as its node died ended in that gap, unrecorded."""
Deliver = Callable[[Outbox], Awaitable[None]]
"""Carries an outbox out at once (the switchboard's commit)."""


async def refusal(s: Services) -> str | None:
    """Why a new call must be refused (`recording.required` and no recorder has room)."""
    if s.recording is None or not s.recording.required:
        return None
    return None if await s.recording.pool.available() else UNAVAILABLE


async def connected(s: Services, out: Outbox, call: Call, names: Mapping[str, str]
                    ) -> str | None:
    """The call was answered: give it a recorder and tell it (`record.start`); the
    recorder's name (None: unrecorded). One round trip: the pool checks the call itself,
    and the specialists' `names` the answer knows are not read again.

    An answer is tried again as a whole after a backend failure (`offers.accept`): an
    earlier attempt may have assigned the recorder and failed after it, its outbox (the
    `recording_started` event, `record.start`) never committed. The pool then hands back
    the same assignment, and this attempt tells the recorder, so each recorder of the call
    is started once. A later segment (> 1) handed back was assigned by a hand-over or a
    resume meanwhile, which told the recorder and the parties itself; one this `assign`
    gave (`new`) is told here: a dead node's answer replayed by the survivor after the
    reconnected recorder let go of the call, and before its hand-over came to it (which
    then found the call given a recorder and left it to whoever gave it: the goal-size
    day's `c_4279b396ed01c0fa`, segment 2 told to nobody, nothing recorded)."""
    if s.recording is None:
        return None
    assignment = await s.recording.pool.assign(call.id, call.session_id)
    if assignment is Unassigned.GONE:  # ended meanwhile: nothing to record
        return None
    if assignment is Unassigned.NO_ROOM:
        await _no_room(s.recording, out, call, announce=False)
        return None
    if assignment.segment == 1 or assignment.new:
        await _tell(s, out, call, assignment, announce=False, names=names)
    return assignment.recorder


async def told_again(s: Services, out: Outbox, call: Call) -> str | None:
    """A dead node's answer told again (`offers.told_again`): its recorder may not have
    heard `record.start` either (killed between its append and its sends: the CI day's
    `c_ea455c27490ae5fa`, both parties offered to rec2 for the whole call, unanswered).
    Sent again, not logged again: the recorder ignores a start for a call it records.
    One the pool gives anew (the call had lost its recorder) is logged and told. The
    recorder's name (None: none)."""
    if s.recording is None:
        return None
    assignment = await s.recording.pool.assign(call.id, call.session_id)
    if not isinstance(assignment, Assignment):
        return None
    if assignment.new:
        await _tell(s, out, call, assignment, announce=False)
    else:
        await _record_start(s, out, call, assignment)
    return assignment.recorder


async def resumed(s: Services, out: Outbox, call: Call) -> None:
    """A party came back to the connected call: a call without a recorder gets one if one
    has room (its assignment died with the node that connected it: nothing else would
    give it one), and the members are told to offer to it."""
    if (s.recording is None or call.state != CallState.CONNECTED
            or await s.recording.pool.recorder_of(call.id) is not None
            or not await s.recording.pool.available()):
        return
    await _start(s, s.recording, out, call, announce=True)


async def ended(s: Services, out: Outbox, call: Call, reason: str) -> None:
    """The call ended (or went back to the queue): its recorder closes the segments."""
    if s.recording is None:
        return
    released = await s.recording.pool.release(call.id)
    name = released.recorder
    if name is None:
        if released.unnamed:  # it ended (or was requeued) within `wait_s`: say so now
            _unrecorded(out, call, "ended before a recorder had room")
        return
    who = recorder(name).id
    out.event(ev.RecordingStopped(recorder=who, reason=reason), call)
    out.send(who, m.RecordStop(call_id=call.id, session_id=call.session_id, reason=reason))


async def relay_allowed(s: Services, call: Call, sender: str, to: str, members: set[str]
                        ) -> bool:
    """`rtc.*` between a party of the call and the call's own recorder."""
    if s.recording is None or call.state != CallState.CONNECTED:
        return False
    name = await s.recording.pool.recorder_of(call.id)
    if name is None:
        return False
    own = recorder(name).id
    return (sender in members and to == own) or (sender == own and to in members)


async def recorder_joined(s: Services, who: Identity, capacity: int | None) -> Outbox:
    """A recorder said hello: it takes over what an earlier connection of it held (handed
    on as `recorder_left` does: its links went with that connection), and sessions
    waiting for a recorder. In one outbox: the hello's handler runs this before it reads
    the recorder's socket, so a commit per session (an append each) kept the recorder's
    answers to its new calls unread (the goal-size day's rec1: 28 sessions, 12 s, eight
    calls given to it meanwhile unrecorded)."""
    out = s.outbox()
    if s.recording is None:
        return out
    held = await s.recording.pool.join(who.id, DEFAULT_CAPACITY if capacity is None
                                       else capacity)
    log.info("recorder %s joined (capacity %s)", who.id, capacity)
    await _hand_on(s, s.recording, out, who, held, "recorder_reconnected", None, recent=False)
    for call_id in await s.recording.pool.take_waiting():
        call = await s.router.get_call(call_id)
        if call is not None and call.state == CallState.CONNECTED:
            await _start(s, s.recording, out, call, announce=True)
    return out


async def recorder_left(s: Services, who: Identity, deliver: Deliver | None = None) -> Outbox:
    """A recorder's connection is gone: its sessions go to other recorders.

    With `deliver` (the switchboard's commit), each session's hand-over is carried out as
    soon as it is decided (`_hand_on`). Without, they are all in the outbox returned."""
    out = s.outbox()
    if s.recording is None:
        return out
    held = await s.recording.pool.leave(who.id)
    log.warning("recorder %s lost with %d session(s)", who.id, len(held))
    await _hand_on(s, s.recording, out, who, held, "recorder_lost", deliver, recent=True)
    if s.recording.catalog is not None:
        # Segments of calls that ended while it lived: `record.stop` was sent, but the
        # manifest never came. No longer held, they would stay `recording` for ever. (A
        # recorder that reconnects sends its recent reports again: not for it.)
        await s.recording.catalog.segments_interrupted(session_id=None, recorder=who.id)
    return out


async def _hand_on(s: Services, setup: RecordingSetup, out: Outbox, who: Identity,
                   held: Mapping[str, int], reason: str, deliver: Deliver | None,
                   recent: bool) -> None:
    """The sessions a recorder's connection held go on, `HAND_ON_AT_ONCE` at a time: with
    `deliver`, each hand-over is carried out as soon as it is decided. One outbox for
    every session made the first one's new recorder and parties wait for all the others'
    log and catalog work (the goal-size day: 33 sessions, 12-14 s under load, and calls
    that ended meanwhile had no second segment). A session whose hand-over fails leaves
    the others' to go on. Then the gaps of calls over: of every `recent` session of a
    recorder that is gone; only of the held ones for one that reconnected (its new
    connection is given new calls meanwhile), if one was over (a reconnecting rec2's 16
    sessions, and `c_e4e9db1fd41e314c`, over before its turn came, had its gap named by
    nobody)."""
    named: set[str] = set()
    ended: set[str] = set()  # held, but their calls ended as it was being lost

    async def hand_on(call_id: str, segment: int) -> None:
        one = out if deliver is None else s.outbox()
        try:
            call = await _interrupted(s, setup, one, call_id, who.principal, segment, reason)
            if deliver is not None:
                await deliver(one)
            if call is not None:
                (named if call.state == CallState.CONNECTED else ended).add(call.session_id)
        except Exception:  # the pool no longer holds the call: say so, hand on the rest
            log.exception("handing call %s over from recorder %s failed", call_id, who.id)

    calls = list(held.items())
    for start in range(0, len(calls), HAND_ON_AT_ONCE):
        await asyncio.gather(*(hand_on(call_id, segment)
                               for call_id, segment in calls[start:start + HAND_ON_AT_ONCE]))
    if setup.catalog is not None and (recent or len(named) < len(held)):
        await _name_gaps(s, setup.catalog, out, who, named, ended, reason,
                         None if recent else set(held))


async def _name_gaps(s: Services, catalog: RecordingCatalog, out: Outbox, who: Identity,
                     named: set[str], ended: set[str], reason: str,
                     calls: set[str] | None) -> None:
    """The lost (or reconnected: `calls`, the ones it held) recorder's sessions whose
    calls are over and that it never closed a segment of get their `recording_interrupted`
    too: a call answered as the recorder's node died had its offers go to the dead node,
    and ended before the hand-over came to it (or before the loss was noticed:
    `record.stop` to a dead recorder), so the log showed `recording_started` and nothing
    else, an unrecorded call whose gap it did not name. Its recent sessions only
    (`GAP_LOOKBACK_S`); the calls still connected were named by their hand-over."""
    since = s.utcnow() - dt.timedelta(seconds=GAP_LOOKBACK_S)
    for told in await catalog.unnamed_gaps(who.id, since, ended - named):
        if told.session_id not in named and (calls is None or told.call_id in calls):
            log.warning("recorder %s lost before it closed a segment of session %s (its "
                        "call over)", who.id, told.session_id)
            out.note(ev.RecordingInterrupted(recorder=who.principal, reason=reason),
                     session_id=told.session_id, call_id=told.call_id)


async def _interrupted(s: Services, setup: RecordingSetup, out: Outbox, call_id: str,
                       lost: str, segment: int, reason: str) -> Call | None:
    """A connected call's recorder (`segment`) is gone: logged, and handed to another. The
    call as read (None: gone); one no longer connected is only released.

    A party's resume may have given the call a recorder already, between the pool letting
    go of it and this hand-over coming to it (`resumed`: a recorder's hello on a loaded
    survivor handed on its sessions one by one, 1 s late for one of them). That assignment
    stands: the parties are told to offer to it, and it is not told again. Told again, the
    log started its segment twice, and its gap named neither (the CI day's
    `c_bb9856bae91f9519`)."""
    call = await s.router.get_call(call_id)
    if call is None or call.state != CallState.CONNECTED:
        await setup.pool.release(call_id)
        return call
    if setup.catalog is not None:
        await setup.catalog.segments_interrupted(
            session_id=call.session_id, recorder=lost.split(":", 1)[1])
    out.event(ev.RecordingInterrupted(recorder=lost, reason=reason, segment=segment), call)
    out.send_all(sorted(members_of(call)),
                 m.ParticipantLeft(call_id=call.id, participant=lost, reason=reason))
    since = await setup.pool.assignment_of(call.id)
    if since is None:
        await _start(s, setup, out, call, announce=True)
    else:
        out.send_all(sorted(members_of(call)), m.ParticipantJoined(
            call_id=call.id, participant=recorder(since.recorder, since.segment)))
    return call


async def _start(s: Services, setup: RecordingSetup, out: Outbox, call: Call, announce: bool
                 ) -> bool:
    """Assign a recorder, log it and tell it; `announce` tells the parties too. The pool
    assigns none to a call that ended (or was requeued) since it was read: kept, the
    recorder would hold the call for ever."""
    assignment = await setup.pool.assign(call.id, call.session_id)
    if assignment is Unassigned.GONE:
        return False
    if assignment is Unassigned.NO_ROOM:
        await _no_room(setup, out, call, announce)
        return False
    await _tell(s, out, call, assignment, announce)
    return True


async def _no_room(setup: RecordingSetup, out: Outbox, call: Call, announce: bool) -> None:
    """The call waits for a recorder that joins (any time); just connected, it is given
    `wait_s` before it is logged unrecorded."""
    waits = not announce and setup.wait_s > 0
    await setup.pool.wait(call.id, named=not waits)
    if waits:
        log.info("call %s waits up to %g s for a recorder", call.id, setup.wait_s)
        out.set_timer(timers.recording_wait(call.id, setup.wait_s))
    else:
        _unrecorded(out, call)


async def _tell(s: Services, out: Outbox, call: Call, assignment: Assignment, announce: bool,
                names: Mapping[str, str] | None = None) -> None:
    """The assignment logged and its recorder told; `announce` tells the parties too."""
    joined = recorder(assignment.recorder, assignment.segment)
    out.event(ev.RecordingStarted(recorder=joined.id, segment=assignment.segment), call)
    await _record_start(s, out, call, assignment, names)
    if announce:
        out.send_all(sorted(members_of(call)),
                     m.ParticipantJoined(call_id=call.id, participant=joined))


async def _record_start(s: Services, out: Outbox, call: Call, assignment: Assignment,
                        names: Mapping[str, str] | None = None) -> None:
    """`record.start` of the assignment to its recorder."""
    out.send(recorder(assignment.recorder).id, m.RecordStart(
        call_id=call.id, session_id=call.session_id, segment=assignment.segment,
        participants=await people(s, call, names)))


def _unrecorded(out: Outbox, call: Call, how: str = "goes on unrecorded") -> None:
    log.warning("call %s %s: no recorder available", call.id, how)
    out.event(ev.RecordingFailed(reason="no_recorder"), call)


async def wait_over(s: Services, call_id: str) -> Outbox:
    """`[recording] wait_s` passed: a call still without a recorder goes on unrecorded,
    logged; it stays waiting, so a recorder that joins later still takes it."""
    out = s.outbox()
    if s.recording is None:
        return out
    call = await s.router.get_call(call_id)
    if (call is not None and call.state == CallState.CONNECTED
            and await s.recording.pool.recorder_of(call_id) is None):
        _unrecorded(out, call)
        await s.recording.pool.wait(call_id, named=True)  # its end logs no second one
    return out


async def segment(s: Services, who: Identity, msg: m.RecordSegment) -> Outbox:
    """`record.segment`: a party's segment file was created. Taken from the call's recorder,
    and also after the call ended or went to another recorder, from one the session's log
    has told to record it: the report is a write that may wait (a loaded database, a backend
    restarting) while a short call ends, and refusing it lost a file that holds the party's
    media (the manifest that followed was refused too)."""
    if s.recording is None:
        raise Refused("recording_off", "recording is not enabled on this server")
    pool, catalog = s.recording.pool, s.recording.catalog
    call = await s.router.get_call(msg.call_id)
    if call is not None and call.session_id != msg.session_id:
        call = None
    ours = call is not None and await pool.recorder_of(call.id) == who.id
    if not ours and (catalog is None
                     or not await catalog.recorded_by(msg.session_id, who.principal)):
        raise Refused("not_recording", f"you are not recording call {msg.call_id}")
    if catalog is not None:
        try:
            await catalog.segment_started(
                session_id=msg.session_id, participant_id=msg.participant_id,
                segment=msg.segment, recorder=who.id, path=msg.path)
        except SegmentRefused as exc:
            raise Refused("not_recording", str(exc)) from None
        if await pool.recorder_of(msg.call_id) != who.id and (
                (call is not None and call.state == CallState.CONNECTED)
                or await s.presences.get(who.principal) is None):
            # Given up meanwhile (its node taken for dead, say), or lost since: the hand-over
            # may have interrupted its segments before this one was written, and no manifest
            # of a lost recorder is awaited, so the segment ends here, as interrupted. (A call
            # that ended: its live recorder's manifest closes it.)
            await catalog.segments_interrupted(session_id=msg.session_id, recorder=who.id)
    return s.outbox()


async def manifest(s: Services, who: Identity, msg: m.RecordManifest) -> Outbox:
    """`record.manifest`: a segment is closed; a failed one is logged in the session."""
    if s.recording is None:
        raise Refused("recording_off", "recording is not enabled on this server")
    fresh = True
    if s.recording.catalog is not None:
        try:
            fresh = await s.recording.catalog.segment_closed(
                session_id=msg.session_id, participant_id=msg.participant_id,
                recorder=who.id, manifest=msg.manifest)
        except SegmentRefused as exc:
            raise Refused("not_recording", str(exc)) from None
    out = s.outbox()
    if fresh and msg.manifest.state == "failed":
        out.note(ev.RecordingFailed(reason=msg.manifest.reason or "unknown",
                                    recorder=who.principal, participant_id=msg.participant_id,
                                    segment=msg.manifest.segment),
                 session_id=msg.session_id, call_id=msg.call_id, actor=who.principal)
    return out
