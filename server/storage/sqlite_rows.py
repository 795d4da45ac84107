"""SQLite: the reads and writes of an append (`group.Rows`), a trip to aiosqlite's
thread for each step of it, not for each statement.

Through SQLAlchemy every statement was a trip of its own to aiosqlite's thread (a queue
put, a thread switch, a wake-up of the event loop) and SQLAlchemy's work around it:
BEGIN IMMEDIATE, two SELECTs, up to four writes and the COMMIT of the answer's append,
seven trips. Here the reads go in one trip (with the BEGIN IMMEDIATE), the writes in
one, the COMMIT in one: three for the answer, two for the call's `queued`. The statements
are SQLAlchemy's tables written out once, their parameters and rows processed by the
columns' own types (`bind_processor`, `result_processor`: the same stored text as
SQLAlchemy's). sqlite3's errors become SQLAlchemy's, as the log expects (IntegrityError).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from functools import lru_cache
from typing import Any, Final

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.storage import sqlite_trips
from server.storage.engine import pooled
from server.storage.group import Reads
from server.storage.projection import (
    PARTICIPANT_KEYS,
    PARTICIPANT_MUTABLE,
    SESSION_KEYS,
    SESSION_MUTABLE,
    Answer,
    Loaded,
    Projection,
    Row,
    logged_answers,
)
from server.storage.schema import session_events, session_participants, sessions
from signaling import events as ev

IN_BATCH: Final = 500  # ids per IN (...) list: SQLite's limit on bound parameters
_EVENT_COLUMNS: Final = ("session_id", "call_id", "ts", "type", "actor", "data")
Step = tuple[str, Sequence[Any], bool]  # SQL, parameters (a list of them: executemany)
# Called with each statement sent here (`bench.trips`, the tests that count statements):
# SQLAlchemy's cursor events do not see them (asyncpg's query logger sees PostgreSQL's)
statement_observers: set[Callable[[str], None]] = set()


def _trip(conn: sqlite3.Connection, steps: Sequence[Step]) -> list[list[Any]]:
    """In aiosqlite's thread: each step in turn, the rows of each."""
    results: list[list[Any]] = []
    for sql, params, many in steps:
        if many:
            conn.executemany(sql, params)
            results.append([])
        else:
            results.append(conn.execute(sql, params).fetchall())
    return results


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _type(table: sa.Table, name: str, dialect: Dialect) -> sa.types.TypeEngine[Any]:
    """The column's type as SQLAlchemy runs it on `dialect` (SQLite's DATETIME text)."""
    return table.c[name].type.dialect_impl(dialect)


class _Table:
    """One table's statements and the processing of its values, for one dialect."""

    def __init__(self, table: sa.Table, dialect: Dialect, names: Sequence[str] | None = None,
                 keys: Sequence[str] = (), mutable: Sequence[str] = ()) -> None:
        self.names = tuple(names or (c.name for c in table.c))
        self.binds = [(n, _type(table, n, dialect).bind_processor(dialect))
                      for n in self.names]
        self.results = [(n, _type(table, n, dialect).result_processor(dialect, None))
                        for n in self.names]
        self.select = f"SELECT {', '.join(self.names)} FROM {table.name}"
        self.insert = (f"INSERT INTO {table.name} ({', '.join(self.names)})"
                       f" VALUES ({_marks(len(self.names))})")
        self.update = (f"UPDATE {table.name} SET {', '.join(f'{m} = ?' for m in mutable)}"
                       f" WHERE {' AND '.join(f'{k} = ?' for k in keys)}") if keys else ""
        self.update_binds = [(n, _type(table, n, dialect).bind_processor(dialect))
                             for n in (*mutable, *keys)]

    @staticmethod
    def _bound(row: Row, binds: Sequence[tuple[str, Callable[[Any], Any] | None]]
               ) -> tuple[Any, ...]:
        return tuple(row[n] if bind is None else bind(row[n]) for n, bind in binds)

    def inserted(self, row: Row) -> tuple[Any, ...]:
        return self._bound(row, self.binds)

    def updated(self, row: Row) -> tuple[Any, ...]:
        return self._bound(row, self.update_binds)

    def row(self, values: Sequence[Any]) -> Row:
        return {n: v if result is None else result(v)
                for (n, result), v in zip(self.results, values, strict=True)}


class _Statements:
    def __init__(self, dialect: Dialect) -> None:
        self.sessions = _Table(sessions, dialect, keys=SESSION_KEYS, mutable=SESSION_MUTABLE)
        self.people = _Table(session_participants, dialect, keys=PARTICIPANT_KEYS,
                             mutable=PARTICIPANT_MUTABLE)
        self.events = _Table(session_events, dialect, names=_EVENT_COLUMNS)


@lru_cache(maxsize=4)
def _statements(dialect: Dialect) -> _Statements:
    return _Statements(dialect)


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + IN_BATCH] for i in range(0, len(items), IN_BATCH)]


class SqliteRows:
    """`group.Rows` on a pooled connection, in a `BEGIN IMMEDIATE` transaction begun by
    its first trip (the database is this connection's alone until the COMMIT: no row
    locks needed)."""

    def __init__(self, dialect: Dialect, adapter: Any) -> None:
        self.adapter = adapter  # SQLAlchemy's aiosqlite adapter connection
        self.statements = _statements(dialect)
        self.begun = False

    async def run(self, *steps: Step) -> list[list[Any]]:
        """The steps in one trip, after the BEGIN IMMEDIATE in the first."""
        begin: tuple[Step, ...] = () if self.begun else (("BEGIN IMMEDIATE", (), False),)
        for observer in statement_observers:
            for sql, _, _ in (*begin, *steps):
                observer(sql)
        try:
            results = await sqlite_trips.in_thread(self.adapter, _trip, (*begin, *steps))
        except sqlite3.Error as exc:
            kind = IntegrityError if isinstance(exc, sqlite3.IntegrityError) else DBAPIError
            raise kind("session log", None, exc) from exc
        finally:  # begun even when a later step failed: rolled back by `connection`
            self.begun = self.begun or bool(self.adapter._connection.in_transaction)
        return results[len(begin):]

    async def load(self, reads: Reads) -> Loaded:
        s, p = self.statements.sessions, self.statements.people
        steps: list[Step] = [
            (f"{s.select} WHERE id IN ({_marks(len(ids))}) ORDER BY id", ids, False)
            for ids in _chunks(reads.sessions)]
        split = len(steps)
        steps += [(f"{p.select} WHERE session_id IN ({_marks(len(ids))})", ids, False)
                  for ids in _chunks(reads.people)]
        end = len(steps)
        steps += [(f"SELECT session_id, data FROM session_events WHERE session_id IN"
                   f" ({_marks(len(ids))}) AND type = ?", [*ids, ev.ANSWERED], False)
                  for ids in _chunks(reads.answers)]
        results = await self.run(*steps)
        loaded = {row["id"]: row for rows in results[:split] for row in map(s.row, rows)}
        people = {(row["session_id"], row["participant_id"]): row
                  for rows in results[split:end] for row in map(p.row, rows)}
        answers: dict[str, set[Answer]] = {sid: set() for sid in reads.answers}
        for rows in results[end:]:
            for sid, data in rows:
                logged = msgspec.json.decode(data)
                answers[sid] |= logged_answers([(logged.get("agent_id"), logged.get("offer"))])
        return loaded, people, answers

    async def open_sessions(self, node_ids: Sequence[str] | None) -> list[tuple[str, str]]:
        final = sorted(ev.FINAL_STATES)
        sql = f"SELECT id, call_id FROM sessions WHERE state NOT IN ({_marks(len(final))})"
        if node_ids is not None:
            sql += f" AND node_id IN ({_marks(len(node_ids))})"
        (rows,) = await self.run((sql + " ORDER BY id", [*final, *(node_ids or ())], False))
        return [(sid, call_id) for sid, call_id in rows]

    @asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[None]:
        await self.run(("SAVEPOINT batch", (), False))
        try:
            yield
        except BaseException:
            await self.run(("ROLLBACK TO batch", (), False), ("RELEASE batch", (), False))
            raise
        await self.run(("RELEASE batch", (), False))

    def savepoint(self) -> AbstractAsyncContextManager[object]:
        return self._savepoint()

    async def write(self, projection: Projection, events: list[dict[str, Any]]) -> None:
        """New rows inserted, changed ones updated: sessions first (the participants'
        foreign key), the events last; all in one trip."""
        st = self.statements
        kinds: list[tuple[_Table, Sequence[Any], dict[Any, Row], Collection[Any]]] = [
            (st.sessions, projection.new_sessions, projection.sessions,
             projection.dirty_sessions),
            (st.people, projection.new_participants, projection.participants,
             projection.dirty_participants)]
        steps: list[Step] = []
        for table, new, rows, dirty in kinds:
            if new:
                steps.append((table.insert, [table.inserted(rows[key]) for key in new], True))
            if dirty:
                steps.append((table.update, [table.updated(rows[key]) for key in sorted(dirty)],
                              True))
        if events:
            steps.append((st.events.insert, [st.events.inserted(e) for e in events], True))
        await self.run(*steps)


@asynccontextmanager
async def connection(engine: AsyncEngine, committed: Callable[[], None] | None = None
                     ) -> AsyncIterator[SqliteRows]:
    """An append's rows on a pooled connection (`engine.pooled`), committed on exit
    (`committed` runs as soon as the COMMIT returned), rolled back on any exception."""
    async with pooled(engine) as connection:
        rows = SqliteRows(engine.dialect, connection.dbapi_connection)
        try:
            yield rows
        except BaseException:
            if rows.begun:  # else the pool's reset does it (`engine._on_sqlite_reset`)
                with suppress(sqlite3.Error):
                    await sqlite_trips.in_thread(rows.adapter, _trip, [("ROLLBACK", (), False)])
            raise
        if rows.begun:
            await rows.run(("COMMIT", (), False))
        if committed is not None:
            committed()
