"""The recorders the switchboard can hand sessions to, and where recordings are catalogued.

`RecorderPool` is the registry of live recorders and of which call each records; the
in-memory pool serves one node, a shared (Redis) one can implement the same interface.
`RecordingCatalog` is the durable list of recorded segments (implemented by the SQL store).
Both are interfaces so that the switchboard's recording rules (`signaling.recording`)
stay free of I/O.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

import msgspec

from .messages import RecordingManifest

DEFAULT_CAPACITY = 16
"""Sessions a recorder takes when it announces no capacity (CPU goal: 5 % a session)."""


class RecorderLoad(msgspec.Struct, kw_only=True, frozen=True):
    """One live recorder as the pool sees it."""

    name: str
    capacity: int
    calls: tuple[str, ...]

    @property
    def load(self) -> float:
        return len(self.calls) / self.capacity if self.capacity else 1.0


class Assignment(msgspec.Struct, kw_only=True, frozen=True):
    """A call given to a recorder; `segment` counts the recorders the call has had; `new`:
    given by this `assign` (else the call had it already)."""

    recorder: str
    segment: int
    new: bool = False


class Unassigned(enum.Enum):
    """Why `assign` gave the call no recorder."""

    NO_ROOM = "no_room"  # no live recorder has room: the call may wait for one
    GONE = "gone"  # the call is not connected in that session (any more): nothing to record


class LiveCalls(Protocol):
    """What the in-memory pool asks the router, in the same turn of the loop as it assigns."""

    def connected_in(self, call_id: str, session_id: str) -> bool:
        """The call is live, connected, in that session."""


class RecorderPool(Protocol):
    """Live recorders, their load, and the recorder of each recorded call."""

    async def join(self, name: str, capacity: int) -> dict[str, int]:
        """Register a live recorder; returns the calls an earlier connection of it held,
        each with the segment it was recording."""
    async def leave(self, name: str) -> dict[str, int]:
        """Forget a recorder that is gone; returns the calls it was recording, each with
        its segment (the hand-over names that one, whoever gives the call a recorder)."""
    async def assign(self, call_id: str, session_id: str) -> Assignment | Unassigned:
        """The call's recorder: the one it has, else the least loaded one with room. Only
        while the call is connected in that session, checked in the same atomic step: a
        step's read of the call may be old (the hang-up ran meanwhile and released it), and
        an ended call's assignment would never be released."""
    async def release(self, call_id: str) -> Released:
        """The call needs no recording any more: its recorder, if it had one, and whether
        it was waiting for one with its gap not logged yet (`wait(named=False)`)."""
    async def recorder_of(self, call_id: str) -> str | None: ...
    async def assignment_of(self, call_id: str) -> Assignment | None:
        """The call's recorder and the segment it records (`new` False)."""
    async def available(self) -> bool:
        """True when some recorder has room for one more session."""
    async def wait(self, call_id: str, named: bool = False) -> None:
        """The call wants a recorder and has none; `take_waiting` hands it out later.
        `named`: its log says so already (`recording_failed`); kept once set."""
    async def take_waiting(self) -> list[str]:
        """The calls waiting for a recorder, forgotten as waiting (assign them now)."""
    async def recorders(self) -> list[RecorderLoad]: ...


class Released(msgspec.Struct, kw_only=True, frozen=True):
    """What `release` freed: the call's recorder; or, without one, whether the call was
    waiting for a recorder and its log does not say so yet (it ended within `wait_s`)."""

    recorder: str | None = None
    unnamed: bool = False


class Told(msgspec.Struct, kw_only=True, frozen=True):
    """A session a recorder was told to record (its `recording_started`)."""

    session_id: str
    call_id: str | None


class SegmentRefused(Exception):
    """A recorder reported a segment it does not own, or for an unknown session."""


class RecordingCatalog(Protocol):
    """The durable list of recorded segments (one row per party per segment)."""

    async def segment_started(self, *, session_id: str, participant_id: str, segment: int,
                              recorder: str, path: str) -> None:
        """A segment file exists and is being written. Raises `SegmentRefused`."""
    async def segment_closed(self, *, session_id: str, participant_id: str, recorder: str,
                             manifest: RecordingManifest) -> bool:
        """The recorder closed the segment and reported its manifest: True, or False when
        this report closed it already (sent again). Raises `SegmentRefused`."""
    async def segments_interrupted(self, *, session_id: str | None, recorder: str) -> int:
        """The recorder was lost: its open segments of the session (of every session:
        None) end as interrupted."""
    async def recorded_by(self, session_id: str, recorder: str) -> bool:
        """Whether `recorder` (its participant id) was told to record the session: the
        report of a segment it opened may be taken after its call ended."""
    async def unnamed_gaps(self, recorder: str, since: dt.datetime,
                           also: Collection[str] = ()) -> list[Told]:
        """The sessions a lost recorder (its name) was told to record, of its recent ones
        (`recording_started` or `recording_stopped` since `since`) and `also`, that it
        never closed a segment of (or left one open), whose log names no interruption of
        it since: gaps nobody has named yet."""


@dataclass(frozen=True, slots=True)
class RecordingSetup:
    """What the switchboard needs to record sessions (`[recording]` with `enabled = true`)."""

    pool: RecorderPool
    catalog: RecordingCatalog | None = None
    required: bool = False
    wait_s: float = 0.0  # a call connecting while no recorder has room waits this long for one


class MemoryRecorderPool:
    """`RecorderPool` in one process; atomic because nothing in it awaits (the router it
    asks whether a call is connected is in the same process)."""

    def __init__(self, calls: LiveCalls) -> None:
        self._connected = calls
        self._capacity: dict[str, int] = {}
        self._calls: dict[str, list[str]] = {}
        self._recorder_of: dict[str, str] = {}
        self._segments: dict[str, int] = {}
        self._waiting: dict[str, bool] = {}  # call -> its gap named in the log

    async def join(self, name: str, capacity: int) -> dict[str, int]:
        held = await self.leave(name)
        self._capacity[name] = max(capacity, 0)
        self._calls[name] = []
        return held

    async def leave(self, name: str) -> dict[str, int]:
        self._capacity.pop(name, None)
        held = self._calls.pop(name, [])
        for call_id in held:
            self._recorder_of.pop(call_id, None)
        return {call_id: self._segments.get(call_id, 0) for call_id in held}

    async def assign(self, call_id: str, session_id: str) -> Assignment | Unassigned:
        if not self._connected.connected_in(call_id, session_id):
            return Unassigned.GONE
        current = self._recorder_of.get(call_id)
        if current is not None:
            return Assignment(recorder=current, segment=self._segments[call_id])
        free = [load for load in await self.recorders() if len(load.calls) < load.capacity]
        if not free:
            return Unassigned.NO_ROOM
        best = min(free, key=lambda r: (r.load, len(r.calls), r.name))
        self._calls[best.name].append(call_id)
        self._recorder_of[call_id] = best.name
        self._waiting.pop(call_id, None)
        segment = self._segments[call_id] = self._segments.get(call_id, 0) + 1
        return Assignment(recorder=best.name, segment=segment, new=True)

    async def release(self, call_id: str) -> Released:
        named = self._waiting.pop(call_id, None)
        self._segments.pop(call_id, None)
        name = self._recorder_of.pop(call_id, None)
        if name is not None and call_id in self._calls.get(name, []):
            self._calls[name].remove(call_id)
        return Released(recorder=name, unnamed=name is None and named is False)

    async def recorder_of(self, call_id: str) -> str | None:
        return self._recorder_of.get(call_id)

    async def assignment_of(self, call_id: str) -> Assignment | None:
        name = self._recorder_of.get(call_id)
        return None if name is None else Assignment(recorder=name,
                                                    segment=self._segments[call_id])

    async def available(self) -> bool:
        return any(len(self._calls[n]) < c for n, c in self._capacity.items())

    async def wait(self, call_id: str, named: bool = False) -> None:
        self._waiting[call_id] = named or self._waiting.get(call_id, False)

    async def take_waiting(self) -> list[str]:
        waiting = list(self._waiting)
        self._waiting.clear()
        return waiting

    async def recorders(self) -> list[RecorderLoad]:
        return [RecorderLoad(name=n, capacity=c, calls=tuple(self._calls[n]))
                for n, c in sorted(self._capacity.items())]
