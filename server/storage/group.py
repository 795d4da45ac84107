"""Appends to the session log that share one commit (group commit, `sessionlog.py`), and
what every append does with the rows of its sessions, on either database (`Rows`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from server.storage.errors import StorageError
from server.storage.lanes import Batch
from server.storage.projection import PEOPLE_EVENTS, Loaded, Projection, Row
from signaling import events as ev
from signaling.events import LogEvent

log = logging.getLogger(__name__)


class Rows(Protocol):
    """The reads and writes of an append, on one connection in its transaction:
    SQLAlchemy core on SQLite (`sqlite_rows`), asyncpg on PostgreSQL (`pg_rows`)."""

    async def load(self, reads: Reads) -> Loaded:
        """The sessions `reads` names, locked until the commit (in id order: two nodes'
        groups wait for each other, never deadlock), the participants of its `people` and
        the answers (`projection.Answer`) of its `answers`."""

    async def write(self, projection: Projection, events: list[dict[str, Any]]) -> None:
        """What the projection changed, and the events, in their order."""

    async def open_sessions(self, node_ids: Sequence[str] | None) -> list[tuple[str, str]]:
        """(id, call id) of every session not final (of those nodes), locked, in id order."""

    def savepoint(self) -> AbstractAsyncContextManager[object]:
        """A SAVEPOINT: what runs in it is rolled back alone when it raises."""


class Group:
    """Appends sharing one commit. Settled as soon as the COMMIT returned (`_write`'s
    `committed`): not after the connection's return to the pool, one more round trip
    before each step's messages could go out."""

    def __init__(self, batches: list[Batch], appended_at: Sequence[float] = ()) -> None:
        self.batches = batches
        self.failed: dict[int, BaseException] = {}  # batch index -> why it alone failed
        self.settled = False
        self.appended_at = appended_at  # each batch's `time.perf_counter()` (measurement)
        self.began = time.perf_counter()
        self.ended = 0.0

    @property
    def events(self) -> list[Sequence[LogEvent]]:
        return [events for events, _ in self.batches]

    def settle(self) -> None:
        self.settled = True
        self.ended = time.perf_counter()
        for index, (_, waiter) in enumerate(self.batches):
            if waiter.done():
                continue
            if index in self.failed:
                waiter.set_exception(self.failed[index])
            else:
                waiter.set_result(None)

    def fail(self, exc: BaseException) -> None:
        """The commit itself failed: nothing of the group was written."""
        self.ended = time.perf_counter()
        for _, waiter in self.batches:
            if not waiter.done():
                waiter.set_exception(exc)


@dataclass(frozen=True)
class Reads:
    """What a group reads before its projection (`Reads.of`)."""

    sessions: Sequence[str]  # sorted
    people: Sequence[str]  # sessions whose participants are read too, sorted
    answers: Sequence[str] = ()  # and whose answers are (`answered_again`), sorted

    @classmethod
    def of(cls, batches: Sequence[Sequence[LogEvent]]) -> Reads:
        """The group's sessions, but not one it opens (its first event `queued`: if it
        existed, its INSERT fails, `AlreadyExists`; one SELECT less on the `queued` append of
        every call), with the participants of those that join, leave or hand off. None at
        all: the group is one statement, which PostgreSQL commits on its own (`pg_rows`)."""
        first: dict[str, str] = {}  # session -> its first event's type in the group
        people: set[str] = set()
        for events in batches:
            for e in events:
                if e.session_id:
                    first.setdefault(e.session_id, e.type)
                    if e.type in PEOPLE_EVENTS:
                        people.add(e.session_id)
        read = sorted(sid for sid, kind in first.items() if kind != ev.QUEUED)
        return cls(read, sorted(people.intersection(read)))

    def __bool__(self) -> bool:
        return bool(self.sessions)


async def append_together(rows: Rows, batches: Sequence[Sequence[LogEvent]],
                          failed: dict[int, BaseException], reads: Reads | None = None
                          ) -> None:
    """Every batch of the group in one projection, written together (`Rows.write`: one
    statement on PostgreSQL, one per kind of row on SQLite): a handful of round trips
    for the whole group instead of about six for each batch. The group's sessions are
    locked first (in id order) and stay locked until the commit, and on several nodes
    the other node's group waits for them: each round trip here (a turn of a busy event
    loop) is paid by both. A batch that a rule refuses is taken back alone
    (`Projection.undo`) and its exception put in `failed`; a database error fails the
    whole attempt and the caller runs the batches one SAVEPOINT each
    (`SessionLog._append_each`)."""
    reads = reads or Reads.of(batches)
    projection = Projection(*await rows.load(reads)) if reads else Projection({}, {})
    if reads and (again := answered_again(batches, projection.sessions)):
        projection.reload(await rows.load(again))
    written: list[dict[str, Any]] = []
    alone = len(batches) == 1  # nothing to take back: a refused batch writes nothing
    for index, events in enumerate(batches):
        mark = None if alone else projection.mark(
            {e.session_id for e in events if e.session_id})
        try:
            batch = [{"session_id": e.session_id, "call_id": projection.apply(e),
                      "ts": e.ts, "type": e.type, "actor": e.actor, "data": e.data}
                     for e in _fresh(projection, events)]
        except StorageError as exc:
            failed[index] = exc
            if mark is None:
                return
            projection.undo(mark)
            continue
        written.extend(batch)
    if written:
        await rows.write(projection, written)


def answered_again(batches: Sequence[Sequence[LogEvent]], loaded: dict[str, Row]) -> Reads:
    """The sessions answered in the group that were answered before, to read again with
    their answers (`Projection.logged_already`) and participants now that they are locked:
    on PostgreSQL the first read's rows of other tables are those of its snapshot, taken
    before it waited for the lock (the session's row alone is the newest), so an answer
    the other node committed meanwhile would be missed. Only a session answered again
    pays this round trip: a first answer has nothing to be the same as."""
    ids = sorted({e.session_id for events in batches for e in events
                  if e.type == ev.ANSWERED and e.session_id in loaded
                  and loaded[e.session_id]["answered_at"] is not None})
    return Reads(ids, ids, ids)


def _fresh(projection: Projection, events: Sequence[LogEvent]) -> Iterator[LogEvent]:
    """The batch less an answer the log has already (`Projection.logged_already`: a node
    taken for dead whose append was under way) and what its step logged with it for that
    session, its joins and recording start: applied again, a join would mark a specialist
    who left since present again. Said so for the operator."""
    repeated: set[str | None] = set()
    for event in events:
        if projection.logged_already(event):
            log.warning("session %s: %s's answer at offer %s is logged already; left out",
                        event.session_id, event.data.get("agent_id"), event.data.get("offer"))
            repeated.add(event.session_id)
        elif event.session_id not in repeated or event.type not in _WITH_AN_ANSWER:
            yield event


_WITH_AN_ANSWER = frozenset({ev.PARTICIPANT_JOINED, ev.RECORDING_STARTED})
