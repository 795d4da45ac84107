"""The durable session log: append-only events, projected onto sessions in one transaction.

`append` returns only once the events and their projection are committed,
so the switchboard may acknowledge a client right after it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Final

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.steptrace import STEP, waiting
from server.storage import pg_rows, sqlite_rows
from server.storage.engine import StoreBase, on_live_connection, require_aware
from server.storage.errors import (
    AlreadyExists,
    BadCursor,
    DatabaseClosed,
    InvalidRecord,
    StorageError,
)
from server.storage.group import Group, Reads, Rows, append_together
from server.storage.inlists import batches
from server.storage.lanes import Lanes
from server.storage.projection import check_event
from server.storage.records import Participant, SessionDetail, SessionEvent, SessionSummary
from server.storage.schema import session_events, session_participants, sessions
from server.storage.units import ALL, Scope
from signaling import events as ev
from signaling.backend import NOT_LOGGED_YET, CallEnd, Ending
from signaling.events import LogEvent
from signaling.identity import Role, principal_of

MAX_PAGE: Final = 500  # one page of the manager list; keyset makes deeper pages cheap


def encode_cursor(created_at: dt.datetime, session_id: str) -> str:
    """An opaque keyset position: the last row of a page."""
    raw = msgspec.json.encode([created_at.isoformat(), session_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """The position of a cursor from `encode_cursor`; `BadCursor` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, session_id = msgspec.json.decode(raw, type=tuple[str, str])
        created_at = dt.datetime.fromisoformat(stamp)
    except (binascii.Error, ValueError, msgspec.ValidationError, msgspec.DecodeError):
        raise BadCursor(f"bad cursor {cursor!r}") from None
    if created_at.utcoffset() is None:
        raise BadCursor(f"bad cursor {cursor!r}")
    return created_at, session_id


def _event(row: Any) -> SessionEvent:
    return SessionEvent(
        id=row.id,
        type=row.type,
        ts=row.ts,
        session_id=row.session_id,
        call_id=row.call_id,
        actor=row.actor,
        data=dict(row.data),
    )


class SessionLog(StoreBase):
    """Append, list and read sessions; close those a crash left open."""

    _lanes: Lanes  # appends awaiting a group, sessions of the groups in flight
    _committers: set[asyncio.Task[None]]  # one a group in flight
    _starting: bool  # `_start_groups` is due on the next turn of the loop
    append_observer: Callable[[float], None] | None  # seconds one append took (metrics)
    group_observer: Callable[[Group], None] | None  # each group once done (bench.sessionlog)

    async def append(self, events: Sequence[LogEvent]) -> None:
        """Store events and their projection atomically; a bad event writes nothing.

        Concurrent appends share one commit (group commit): one bad batch fails
        alone (`group.append_together`), and all of them pay for a single fsync.
        With `groups_in_flight` > 1 (PostgreSQL), groups that share no session
        commit at once (`lanes.Lanes`); a session's batches commit in the order
        they were appended. An `answered` the session has logged already (the same
        specialist and offer: a fenced node's append landing after the survivor's) is left
        out, the rest of its batch stored (`Projection.logged_already`).
        Returns once the batch is committed.
        Raises `UnknownSession`, `SessionClosed`, `InvalidEvent`, `AlreadyExists`.
        """
        if not events:
            return
        for event in events:
            check_event(event)
        start = time.perf_counter()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lanes.add((events, done))
        if not self._starting:  # on the next turn: the appends of this one share a group
            self._starting = True
            asyncio.get_running_loop().call_soon(self._start_groups)
        with waiting("database log append"):
            await done
        if self.append_observer is not None:
            self.append_observer(time.perf_counter() - start)

    @property
    def groups_in_flight(self) -> int:
        """How many groups may commit at once (`lanes.GROUPS_IN_FLIGHT`)."""
        return self._lanes.limit

    @groups_in_flight.setter
    def groups_in_flight(self, limit: int) -> None:
        """More than one on PostgreSQL only: SQLite has one writer."""
        self._lanes.limit = max(1, limit) if self.dialect == "postgresql" else 1

    def _start_groups(self) -> None:
        self._starting = False
        while (taken := self._lanes.take()) is not None:
            number, what = taken
            group = Group(what.batches, what.appended_at)
            task = asyncio.get_running_loop().create_task(self._run_group(number, group))
            self._committers.add(task)
            task.add_done_callback(self._committers.discard)

    async def _drain(self) -> None:
        """Until every append waiting or in flight is committed or failed (`close`)."""
        self._start_groups()
        while self._committers:
            await asyncio.gather(*self._committers, return_exceptions=True)

    def _group_done(self, number: int, group: Group) -> None:
        """The group committed (its COMMIT returned) or failed: its sessions are free for
        the next group before its connection is back in the pool."""
        if not self._lanes.free(number):
            return  # told already, at its COMMIT
        if self.group_observer is not None:
            self.group_observer(group)
        self._start_groups()

    async def _run_group(self, number: int, group: Group) -> None:
        STEP.set(None)  # the group's reads are its appenders' one wait, not the first one's
        def settled() -> None:
            group.settle()
            self._group_done(number, group)
        try:
            await on_live_connection(partial(self._commit_group, group, settled),
                                     "appending to the session log")
        except BaseException as exc:  # the commit itself failed: nothing was written
            group.fail(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._group_done(number, group)

    @asynccontextmanager
    async def _rows(self, committed: Callable[[], None] | None = None,
                    transaction: bool = True) -> AsyncIterator[Rows]:
        """An append's rows in a write transaction (`_write`); on PostgreSQL, one that
        reads nothing (`transaction` False) is its one statement, committed on its own."""
        if self._closed:
            raise DatabaseClosed("database is closed")
        if self._write_lock is not None:  # SQLite: one writer at a time
            async with self._write_lock, sqlite_rows.connection(self._engine, committed) as rows:
                yield rows
            return
        async with pg_rows.connection(self._engine, transaction, committed) as pg:
            yield pg

    async def _commit_group(self, group: Group, settled: Callable[[], None]) -> None:
        if group.settled:
            return  # committed: run again only because the connection was lost afterwards
        group.failed.clear()
        batches, reads = group.events, Reads.of(group.events)
        try:  # no SAVEPOINT around it: two round trips less, one while the rows are locked
            async with self._rows(settled, transaction=bool(reads)) as rows:
                await append_together(rows, batches, group.failed, reads)
        except IntegrityError as exc:  # a row already there (a retried `queued`), rare
            if len(batches) == 1:
                raise _already_logged(exc) from exc
            group.failed.clear()  # rolled back: one SAVEPOINT a batch finds which batch
            async with self._rows(settled) as rows:
                await self._append_each(rows, batches, group.failed)

    async def _append_each(self, rows: Rows, batches: list[Sequence[LogEvent]],
                           failed: dict[int, BaseException]) -> None:
        """Several batches in one transaction, each in a SAVEPOINT: one fails alone."""
        # Lock every session of the group at once, in id order: two nodes committing
        # overlapping groups then wait for each other, never deadlock.
        await rows.load(Reads(
            sorted({e.session_id for events in batches for e in events if e.session_id}), ()))
        for index, events in enumerate(batches):
            alone: dict[int, BaseException] = {}
            try:
                async with rows.savepoint():
                    await append_together(rows, [events], alone)
            except IntegrityError as exc:
                failed[index] = _already_logged(exc)
            except StorageError as exc:
                failed[index] = exc
            if alone:
                failed[index] = alone[0]

    async def close_lost(self, call_id: str, now: dt.datetime,
                         alive: Callable[[str], Awaitable[bool]],
                         endings: Callable[[str], Awaitable[Ending | None]]) -> bool:
        return await self.close_interrupted(now, alive=alive, call_id=call_id,
                                            endings=endings) == 1

    async def close_interrupted(self, now: dt.datetime, node_ids: set[str] | None = None,
                                alive: Callable[[str], Awaitable[bool]] | None = None,
                                call_id: str | None = None,
                                endings: Callable[[str], Awaitable[Ending | None]] | None = None
                                ) -> int:
        """Close every open session (of those nodes; of that call) whose call is not
        `alive` (all when not given): as its ending step would have, when routing kept
        that end (`endings`), else `interrupted`; returns how many."""
        require_aware(now=now)
        if node_ids is not None and not node_ids:
            return 0
        async with self._rows() as rows:  # locked in the order of `append`: no deadlock
            events: list[LogEvent] = []
            closed = 0
            for sid, call in await rows.open_sessions(
                    None if node_ids is None else sorted(node_ids)):
                if call_id not in (None, call) or (alive is not None and await alive(call)):
                    continue
                ending = None if endings is None else await endings(call)
                events += (ending.events(sid, call) if ending is not None else
                           [LogEvent(type=ev.INTERRUPTED, ts=now, session_id=sid, call_id=call)])
                closed += 1
            failed: dict[int, BaseException] = {}
            if events:
                await append_together(rows, [events], failed)
            if failed:
                raise failed[0]
        return closed

    async def list_sessions(
        self,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        queue: str | None = None,
        site: str | None = None,
        terminal: str | None = None,
        specialist: str | None = None,
        outcome: str | None = None,
        rating: int | None = None,
        state: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        scope: Scope = ALL,
    ) -> tuple[list[SessionSummary], str | None]:
        """Sessions newest first (created_at, id), `limit` (<= 500) at a time.

        `start` is inclusive, `end` exclusive; `specialist` matches the first
        answering specialist or any participant with that principal id. Returns
        the page and the cursor of the next one (None on the last page).
        """
        require_aware(start=start, end=end)
        if limit < 1:
            raise InvalidRecord(f"limit must be >= 1, got {limit}")
        limit = min(limit, MAX_PAGE)
        query = sa.select(sessions).order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
        exact = {
            sessions.c.queue: queue,
            sessions.c.site_id: site,
            sessions.c.terminal_id: terminal,
            sessions.c.outcome: outcome,
            sessions.c.rating: rating,
            sessions.c.state: state,
        }
        for column, value in exact.items():
            if value is not None:
                query = query.where(column == value)
        if (seen := scope.sites_clause(sessions.c.site_id)) is not None:
            query = query.where(seen)
        if start is not None:
            query = query.where(sessions.c.created_at >= start)
        if end is not None:
            query = query.where(sessions.c.created_at < end)
        if specialist is not None:
            # Uncorrelated: computed once, not once per scanned row (SQLite).
            joined = sa.select(session_participants.c.session_id).where(
                session_participants.c.principal_id == specialist
            )
            query = query.where(
                sa.or_(sessions.c.specialist_id == specialist, sessions.c.id.in_(joined))
            )
        if cursor is not None:
            created_at, session_id = decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    sessions.c.created_at < created_at,
                    sa.and_(sessions.c.created_at == created_at, sessions.c.id < session_id),
                )
            )
        async with self._read() as conn:
            rows = (await conn.execute(query.limit(limit + 1))).all()
        page = [SessionSummary(**row._mapping) for row in rows[:limit]]
        if len(rows) <= limit:
            return page, None
        return page, encode_cursor(page[-1].created_at, page[-1].id)

    async def session_members(self, session_id: str) -> set[str] | None:
        """Participant ids that took part (may rate or wrap up); None for an unknown session."""
        query = sa.select(sessions.c.id, session_participants.c.participant_id).select_from(
            sessions.outerjoin(session_participants,
                               session_participants.c.session_id == sessions.c.id)
        ).where(sessions.c.id == session_id)  # one statement: each wrap-up and rating asks
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return None
        return {row.participant_id for row in rows if row.participant_id is not None}

    async def open_calls(self, call_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        async with self._read() as conn:
            for batch in batches(call_ids):
                found.update(await conn.scalars(sa.select(sessions.c.call_id).where(
                    sessions.c.call_id.in_(batch),
                    sessions.c.state.not_in(sorted(ev.FINAL_STATES)))))
        return found

    async def sessions_with(self, event_type: str, session_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        async with self._read() as conn:
            for batch in batches(session_ids):
                found.update(str(s) for s in await conn.scalars(
                    sa.select(session_events.c.session_id).distinct().where(
                        session_events.c.type == event_type,
                        session_events.c.session_id.in_(batch))))
        return found

    async def call_end(self, call_id: str, principal: str) -> CallEnd | None:
        async with self._read() as conn:
            row = (await conn.execute(
                sa.select(sessions.c.id, sessions.c.state, sessions.c.end_reason,
                          sessions.c.terminal_id).where(sessions.c.call_id == call_id)
            )).first()
            if row is None:
                return None
            if principal != principal_of(Role.TERMINAL, row.terminal_id or ""):
                took_part = await conn.scalar(sa.select(session_participants.c.participant_id)
                                              .where(session_participants.c.session_id == row.id,
                                                     session_participants.c.participant_id
                                                     == principal))
                if took_part is None:
                    return None
        over = row.state in ev.FINAL_STATES
        return CallEnd(session_id=row.id, reason=(row.end_reason or row.state) if over
                       else NOT_LOGGED_YET)

    async def get_session(self, session_id: str) -> SessionDetail | None:
        """One session with its participants (by join time) and its events (by id)."""
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(sessions).where(sessions.c.id == session_id))
            ).first()
            if row is None:
                return None
            people = (
                await conn.execute(
                    sa.select(session_participants)
                    .where(session_participants.c.session_id == session_id)
                    .order_by(
                        session_participants.c.joined_at, session_participants.c.participant_id
                    )
                )
            ).all()
            timeline = (
                await conn.execute(
                    sa.select(session_events)
                    .where(session_events.c.session_id == session_id)
                    .order_by(session_events.c.id)
                )
            ).all()
        return SessionDetail(
            **row._mapping,
            participants=[
                Participant(**{k: v for k, v in p._mapping.items() if k != "session_id"})
                for p in people
            ],
            events=[_event(e) for e in timeline],
        )


def _already_logged(exc: IntegrityError) -> AlreadyExists:
    return AlreadyExists(f"session or call id already logged: {exc.orig}")
