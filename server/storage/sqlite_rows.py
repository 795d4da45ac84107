"""SQLite: the reads and writes of an append (`group.Rows`) in SQLAlchemy core, one
statement per kind of row."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.group import Reads
from server.storage.projection import (
    PARTICIPANT_KEYS,
    PARTICIPANT_MUTABLE,
    SESSION_KEYS,
    SESSION_MUTABLE,
    ParticipantKey,
    Projection,
    Row,
)
from server.storage.schema import session_events, session_participants, sessions
from signaling import events as ev

IN_BATCH: Final = 500  # ids per IN (...) list: SQLite's limit on bound parameters


def chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + IN_BATCH] for i in range(0, len(items), IN_BATCH)]


def _update_of(table: sa.Table, keys: Sequence[str], mutable: Sequence[str]) -> sa.Update:
    """One UPDATE of `mutable` columns for the row found by `keys`, run as executemany;
    each parameter typed like its column (UTC timestamps)."""
    return (
        table.update()
        .where(sa.and_(*(table.c[k] == sa.bindparam(f"b_{k}") for k in keys)))
        .values({name: sa.bindparam(f"b_{name}", type_=table.c[name].type) for name in mutable})
    )


# Built once: a statement built for each append cost more CPU than its compilation, which
# SQLAlchemy caches.
_IDS: sa.BindParameter[list[str]] = sa.bindparam("ids", expanding=True)
_LOAD_SESSIONS = sa.select(sessions).where(sessions.c.id.in_(_IDS)).order_by(sessions.c.id)
_LOAD_PARTICIPANTS = sa.select(session_participants).where(
    session_participants.c.session_id.in_(_IDS))
_OPEN_SESSIONS = (sa.select(sessions.c.id, sessions.c.call_id)
                  .where(sessions.c.state.not_in(sorted(ev.FINAL_STATES)))
                  .order_by(sessions.c.id))
_UPDATE_SESSIONS = _update_of(sessions, SESSION_KEYS, SESSION_MUTABLE)
_UPDATE_PARTICIPANTS = _update_of(session_participants, PARTICIPANT_KEYS, PARTICIPANT_MUTABLE)
_WRITES: Final = ((sessions.insert(), _UPDATE_SESSIONS),
                   (session_participants.insert(), _UPDATE_PARTICIPANTS))
_INSERT_EVENTS = session_events.insert()


def _params(row: Row, names: Sequence[str]) -> dict[str, Any]:
    return {f"b_{name}": row[name] for name in names}


class SqliteRows:
    """`group.Rows` on an SQLAlchemy connection in a write transaction (`BEGIN IMMEDIATE`:
    the database is this connection's alone until the commit, no row locks needed)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def load(self, reads: Reads) -> tuple[dict[str, Row], dict[ParticipantKey, Row]]:
        loaded: dict[str, Row] = {}
        for chunk in chunks(reads.sessions):
            for row in await self.conn.execute(_LOAD_SESSIONS, {"ids": list(chunk)}):
                loaded[row.id] = dict(row._mapping)
        people: dict[ParticipantKey, Row] = {}
        for chunk in chunks(reads.people):
            for row in await self.conn.execute(_LOAD_PARTICIPANTS, {"ids": list(chunk)}):
                people[(row.session_id, row.participant_id)] = dict(row._mapping)
        return loaded, people

    async def open_sessions(self, node_ids: Sequence[str] | None) -> list[tuple[str, str]]:
        query = _OPEN_SESSIONS
        if node_ids is not None:
            query = query.where(sessions.c.node_id.in_(sorted(node_ids)))
        return [(row.id, row.call_id) for row in await self.conn.execute(query)]

    def savepoint(self) -> AbstractAsyncContextManager[object]:
        return self.conn.begin_nested()

    async def write(self, projection: Projection, events: list[dict[str, Any]]) -> None:
        """New rows inserted, changed ones updated: sessions first (the participants'
        foreign key), the events last."""
        kinds: list[tuple[Sequence[Any], dict[Any, Row], Collection[Any], Sequence[str]]] = [
            (projection.new_sessions, projection.sessions, projection.dirty_sessions,
             (*SESSION_KEYS, *SESSION_MUTABLE)),
            (projection.new_participants, projection.participants,
             projection.dirty_participants, (*PARTICIPANT_KEYS, *PARTICIPANT_MUTABLE))]
        for (new, rows, dirty, names), (insert, update) in zip(kinds, _WRITES, strict=True):
            if new:
                await self.conn.execute(insert, [rows[key] for key in new])
            if dirty:
                await self.conn.execute(update, [_params(rows[key], names)
                                                 for key in sorted(dirty)])
        if events:
            await self.conn.execute(_INSERT_EVENTS, events)
