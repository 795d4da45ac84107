"""The switchboard's recording rules: who records a session, and what happens when it fails.

A recorder is a hidden participant of a connected call (`recorder:<name>`): when a call
connects it is given to the least loaded live recorder (`RecorderPool`), listed in
`call.connected` and told `record.start`; each party then offers it its tracks over the
ordinary `rtc.*` relay. A recorder that goes away interrupts its sessions; each is handed
to another recorder at once (the parties get `participant.left` then `participant.joined`
and offer again, so the rest lands in a new segment) or waits for the next one to join.
Every step is a session-log event, so an unrecorded stretch is never silent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from . import events as ev
from . import messages as m
from .errors import Refused
from .events import LogEvent
from .identity import Identity, principal_of
from .model import Call, CallState
from .recorders import DEFAULT_CAPACITY, RecordingSetup, SegmentRefused

if TYPE_CHECKING:
    from .batch import Batch
    from .switchboard import Switchboard

log = logging.getLogger(__name__)

RECORDER: Final = "recorder"
UNAVAILABLE: Final = "recorder_unavailable"
WAIT_TIMER: Final = "recording_wait"  # timer kind and key prefix of `[recording] wait_s`


class RecordingDesk:
    """Recording hooks of one `Switchboard`; every hook is a no-op when recording is off."""

    def __init__(self, board: Switchboard, setup: RecordingSetup | None) -> None:
        self._board = board
        self._setup = setup

    @property
    def enabled(self) -> bool:
        return self._setup is not None

    # ---- hooks of the call lifecycle ---------------------------------------------------

    async def refusal(self) -> str | None:
        """Why a new call must be refused (`recording.required` and no recorder has room)."""
        if self._setup is None or not self._setup.required:
            return None
        return None if await self._setup.pool.available() else UNAVAILABLE

    async def participants(self, call: Call) -> list[m.Participant]:
        """The call's recorder as a participant, if it has one."""
        if self._setup is None:
            return []
        name = await self._setup.pool.recorder_of(call.id)
        return [] if name is None else [_participant(name)]

    async def connected(self, batch: Batch, call: Call) -> bool:
        """The call (re)connected: give it a recorder unless it has one. True if recorded."""
        if self._setup is None:
            return False
        if await self._setup.pool.recorder_of(call.id) is not None:
            return True
        return await self._start(batch, call, announce=False)

    async def ended(self, batch: Batch, call: Call, reason: str) -> None:
        """The call ended (or went back to the queue): its recorder closes the segments."""
        if self._setup is None:
            return
        name = await self._setup.pool.release(call.id)
        if name is None:
            return
        recorder = principal_of(RECORDER, name)
        batch.event(ev.RECORDING_STOPPED, call, None, recorder=recorder, reason=reason)
        batch.send(recorder, m.RecordStop(call_id=call.id, session_id=call.session_id,
                                          reason=reason))

    async def relay_allowed(self, call: Call, sender: str, to: str, members: set[str]) -> bool:
        """`rtc.*` between a party of the call and the call's own recorder."""
        if self._setup is None or call.state != CallState.CONNECTED:
            return False
        name = await self._setup.pool.recorder_of(call.id)
        if name is None:
            return False
        recorder = principal_of(RECORDER, name)
        return (sender in members and to == recorder) or (sender == recorder and to in members)

    # ---- recorders coming and going ------------------------------------------------------

    async def recorder_joined(self, who: Identity, capacity: int | None) -> None:
        """A recorder said hello: it takes over what an earlier connection of it held, and
        sessions waiting for a recorder."""
        if self._setup is None:
            return
        held = await self._setup.pool.join(who.id, DEFAULT_CAPACITY if capacity is None
                                           else capacity)
        log.info("recorder %s joined (capacity %s)", who.id, capacity)
        for call_id in held:
            await self._interrupted(call_id, who.principal, "recorder_reconnected")
        for call_id in await self._setup.pool.take_waiting():
            call = await self._board.router.get_call(call_id)
            if call is not None and call.state == CallState.CONNECTED:
                batch = self._batch()
                await self._start(batch, call, announce=True)
                await batch.commit()

    async def recorder_left(self, who: Identity) -> None:
        """A recorder's connection is gone: its sessions go to other recorders."""
        if self._setup is None:
            return
        held = await self._setup.pool.leave(who.id)
        log.warning("recorder %s lost with %d session(s)", who.id, len(held))
        for call_id in held:
            try:
                await self._interrupted(call_id, who.principal, "recorder_lost")
            except Exception:  # the pool no longer holds the call: say so, hand on the rest
                log.exception("handing call %s over from recorder %s failed", call_id, who.id)

    async def _interrupted(self, call_id: str, recorder: str, reason: str) -> None:
        assert self._setup is not None
        call = await self._board.router.get_call(call_id)
        if call is None or call.state != CallState.CONNECTED:
            await self._setup.pool.release(call_id)
            return
        if self._setup.catalog is not None:
            await self._setup.catalog.segments_interrupted(
                session_id=call.session_id, recorder=recorder.split(":", 1)[1])
        batch = self._batch()
        batch.event(ev.RECORDING_INTERRUPTED, call, None, recorder=recorder, reason=reason)
        for member in _humans(call):
            batch.send(member, m.ParticipantLeft(call_id=call.id, participant=recorder,
                                                 reason=reason))
        await self._start(batch, call, announce=True)
        await batch.commit()

    async def _start(self, batch: Batch, call: Call, announce: bool) -> bool:
        """Assign a recorder, log it and tell it; `announce` tells the parties too."""
        assert self._setup is not None
        assignment = await self._setup.pool.assign(call.id)
        if assignment is None:
            await self._setup.pool.wait(call.id)  # a recorder that joins takes it (any time)
            if not announce and self._setup.wait_s > 0:  # just connected: give one a moment
                log.info("call %s waits up to %g s for a recorder", call.id, self._setup.wait_s)
                await self._board.scheduler.schedule(
                    f"{WAIT_TIMER}:{call.id}", self._setup.wait_s, WAIT_TIMER,
                    {"call_id": call.id})
                return False
            self._unrecorded(batch, call)
            return False
        recorder = _participant(assignment.recorder)
        batch.event(ev.RECORDING_STARTED, call, None, recorder=recorder.id,
                    segment=assignment.segment)
        parties = [p for p in await self._board._participants(call) if p.role != RECORDER]
        batch.send(recorder.id, m.RecordStart(call_id=call.id, session_id=call.session_id,
                                              segment=assignment.segment, participants=parties))
        if announce:
            for member in _humans(call):
                batch.send(member, m.ParticipantJoined(call_id=call.id, participant=recorder))
        return True

    def _unrecorded(self, batch: Batch, call: Call) -> None:
        log.warning("call %s goes on unrecorded: no recorder available", call.id)
        batch.event(ev.RECORDING_FAILED, call, None, reason="no_recorder")

    async def wait_over(self, call_id: str) -> None:
        """`[recording] wait_s` passed: a call still without a recorder goes on unrecorded,
        logged; it stays waiting, so a recorder that joins later still takes it."""
        if self._setup is None:
            return
        call = await self._board.router.get_call(call_id)
        if (call is None or call.state != CallState.CONNECTED
                or await self._setup.pool.recorder_of(call_id) is not None):
            return
        batch = self._batch()
        self._unrecorded(batch, call)
        await batch.commit()

    # ---- reports from a recorder -------------------------------------------------------

    async def segment(self, who: Identity, msg: m.RecordSegment) -> None:
        """`record.segment`: a party's segment file was created."""
        if self._setup is None:
            raise Refused("recording_off", "recording is not enabled on this server")
        call = await self._board.router.get_call(msg.call_id)
        if (call is None or call.session_id != msg.session_id
                or await self._setup.pool.recorder_of(call.id) != who.id):
            raise Refused("not_recording", f"you are not recording call {msg.call_id}")
        if self._setup.catalog is not None:
            try:
                await self._setup.catalog.segment_started(
                    session_id=msg.session_id, participant_id=msg.participant_id,
                    segment=msg.segment, recorder=who.id, path=msg.path)
            except SegmentRefused as exc:
                raise Refused("not_recording", str(exc)) from None

    async def manifest(self, who: Identity, msg: m.RecordManifest) -> None:
        """`record.manifest`: a segment is closed; a failed one is logged in the session."""
        if self._setup is None:
            raise Refused("recording_off", "recording is not enabled on this server")
        if self._setup.catalog is not None:
            try:
                await self._setup.catalog.segment_closed(
                    session_id=msg.session_id, participant_id=msg.participant_id,
                    recorder=who.id, manifest=msg.manifest)
            except SegmentRefused as exc:
                raise Refused("not_recording", str(exc)) from None
        if msg.manifest.state == "failed":
            batch = self._batch()
            batch.events.append(LogEvent(
                type=ev.RECORDING_FAILED, ts=self._board.utcnow(), session_id=msg.session_id,
                call_id=msg.call_id, actor=who.principal,
                data={"reason": msg.manifest.reason or "unknown", "recorder": who.principal,
                      "participant_id": msg.participant_id, "segment": msg.manifest.segment}))
            await batch.commit()

    def _batch(self) -> Batch:
        return self._board.batch()


def _participant(name: str) -> m.Participant:
    return m.Participant(id=principal_of(RECORDER, name), role=RECORDER, name=name)


def _humans(call: Call) -> list[str]:
    from .switchboard import _members

    return sorted(_members(call))
