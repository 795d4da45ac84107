"""Appends to the session log that share one commit (group commit, `sessionlog.py`), and
the row reads and writes of an append."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.errors import StorageError
from server.storage.lanes import Batch
from server.storage.pg_write import (
    PARTICIPANT_KEYS,
    PARTICIPANT_MUTABLE,
    SESSION_KEYS,
    SESSION_MUTABLE,
)
from server.storage.pg_write import write as write_in_one
from server.storage.projection import PEOPLE_EVENTS, ParticipantKey, Projection, Row
from server.storage.schema import session_events, session_participants, sessions
from signaling.events import LogEvent

IN_BATCH: Final = 500  # ids per IN (...) list


def chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + IN_BATCH] for i in range(0, len(items), IN_BATCH)]


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


async def append_together(
    conn: AsyncConnection,
    group: list[tuple[Sequence[LogEvent], asyncio.Future[None]]],
    failed: dict[int, BaseException],
) -> None:
    """Every batch of the group in one projection, written together (`write`: one
    statement on PostgreSQL, one per kind of row on SQLite): a handful of round trips
    for the whole group instead of about six for each batch. The group's sessions are
    locked first (in id order) and stay locked until the commit, and on several nodes
    the other node's group waits for them: each round trip here (a turn of a busy event
    loop) is paid by both. A batch that a rule refuses is taken back alone
    (`Projection.undo`); a database error fails the whole attempt and the caller runs
    the batches one SAVEPOINT each (`SessionLog._append_each`)."""
    ids = sorted({e.session_id for events, _ in group for e in events if e.session_id})
    with_people = sorted({e.session_id for events, _ in group for e in events
                          if e.session_id and e.type in PEOPLE_EVENTS})
    projection = Projection(await load_sessions(conn, ids),
                            await load_participants(conn, with_people))
    rows: list[dict[str, Any]] = []
    for index, (events, _) in enumerate(group):
        mark = projection.mark({e.session_id for e in events if e.session_id})
        try:
            batch = [{"session_id": e.session_id, "call_id": projection.apply(e),
                      "ts": e.ts, "type": e.type, "actor": e.actor, "data": e.data}
                     for e in events]
        except StorageError as exc:
            projection.undo(mark)
            failed[index] = exc
            continue
        rows.extend(batch)
    await write(conn, projection, rows)


def _update_of(table: sa.Table, keys: Sequence[str], mutable: Sequence[str]) -> sa.Update:
    """One UPDATE of `mutable` columns for the row found by `keys`, run as executemany;
    each parameter typed like its column (UTC timestamps)."""
    return (
        table.update()
        .where(sa.and_(*(table.c[k] == sa.bindparam(f"b_{k}") for k in keys)))
        .values({name: sa.bindparam(f"b_{name}", type_=table.c[name].type) for name in mutable})
    )


# Built once: a statement built for each append cost more CPU than its compilation, which
# SQLAlchemy caches (each append runs while its group holds the sessions' row locks).
# On PostgreSQL the ids go as one array (`= ANY($1)`): an `IN ($1, $2...)` list is another
# statement for each length, prepared again by every pooled connection.
_IDS: dict[str, Any] = {"postgresql": sa.any_(sa.bindparam("ids", type_=ARRAY(sa.String))),
                        "sqlite": sa.bindparam("ids", expanding=True)}
_LOAD_SESSIONS = {
    dialect: sa.select(sessions)
    .where(sessions.c.id == ids if dialect == "postgresql" else sessions.c.id.in_(ids))
    .order_by(sessions.c.id)  # PostgreSQL locks rows in this order
    .with_for_update()
    for dialect, ids in _IDS.items()}
_LOAD_PARTICIPANTS = {
    dialect: sa.select(session_participants).where(
        session_participants.c.session_id == ids if dialect == "postgresql"
        else session_participants.c.session_id.in_(ids))
    for dialect, ids in _IDS.items()}
_UPDATE_SESSIONS = _update_of(sessions, SESSION_KEYS, SESSION_MUTABLE)
_UPDATE_PARTICIPANTS = _update_of(session_participants, PARTICIPANT_KEYS, PARTICIPANT_MUTABLE)
_INSERT_SESSIONS = sessions.insert()
_INSERT_PARTICIPANTS = session_participants.insert()
_INSERT_EVENTS = session_events.insert()


async def load_sessions(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Row]:
    loaded: dict[str, Row] = {}
    for chunk in chunks(ids):
        query = _LOAD_SESSIONS[conn.dialect.name]
        for row in await conn.execute(query, {"ids": list(chunk)}):
            loaded[row.id] = dict(row._mapping)
    return loaded


async def load_participants(
    conn: AsyncConnection, session_ids: Sequence[str]
) -> dict[ParticipantKey, Row]:
    loaded: dict[ParticipantKey, Row] = {}
    for chunk in chunks(session_ids):
        query = _LOAD_PARTICIPANTS[conn.dialect.name]
        for row in await conn.execute(query, {"ids": list(chunk)}):
            loaded[(row.session_id, row.participant_id)] = dict(row._mapping)
    return loaded


def _params(row: Row, names: Sequence[str]) -> dict[str, Any]:
    return {f"b_{name}": row[name] for name in names}


async def write(conn: AsyncConnection, projection: Projection, events: list[dict[str, Any]]
                ) -> None:
    """Write back what the projection changed, and the events: on PostgreSQL in one
    statement (`pg_write`), on SQLite one statement per kind of row."""
    if conn.dialect.name == "postgresql":
        await write_in_one(conn, projection, events)
        return
    if projection.new_sessions:
        new = [projection.sessions[i] for i in projection.new_sessions]
        await conn.execute(_INSERT_SESSIONS, new)
    if projection.dirty_sessions:
        await conn.execute(_UPDATE_SESSIONS, [
            _params(projection.sessions[i], [*SESSION_KEYS, *SESSION_MUTABLE])
            for i in sorted(projection.dirty_sessions)])
    if projection.new_participants:
        new_people = [projection.participants[k] for k in projection.new_participants]
        await conn.execute(_INSERT_PARTICIPANTS, new_people)
    if projection.dirty_participants:
        await conn.execute(_UPDATE_PARTICIPANTS, [
            _params(projection.participants[k], [*PARTICIPANT_KEYS, *PARTICIPANT_MUTABLE])
            for k in sorted(projection.dirty_participants)])
    if events:
        await conn.execute(_INSERT_EVENTS, events)
