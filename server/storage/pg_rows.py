"""PostgreSQL: the reads and writes of an append (`group.Rows`) straight on asyncpg.

Through SQLAlchemy's asyncpg adapter each statement cost about 100 µs of CPU beyond the
driver's own (a greenlet switch, the compiled cache, the adapter's prepared statements
and cursor, the rows wrapped again): with BEGIN and COMMIT, most of the CPU a call spent
on the session log (`bench.switchboard --pg`). Here an append borrows a connection from
the engine's pool and runs its statements on the asyncpg connection under it, which
prepares each once per connection (its statement cache; a fresh connection prepares
them again). A group that reads nothing (`group.Reads`: a call's `queued`, an agent's
status) is its one statement, which PostgreSQL commits before it answers (an implicit
transaction, as durable as a COMMIT): one round trip instead of three.

asyncpg's errors become SQLAlchemy's, those the rest of the log handles: IntegrityError
for a row already there; DBAPIError(connection_invalidated) with the connection dropped
from the pool when the server closed it (`engine.on_live_connection` runs the work
again on a fresh one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

import asyncpg
import msgspec
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection

from server.storage import engine
from server.storage.group import Reads
from server.storage.pg_write import WRITE, params
from server.storage.projection import (
    Answer,
    Loaded,
    ParticipantKey,
    Projection,
    Row,
    logged_answers,
)
from server.storage.schema import session_participants, sessions
from signaling import events as ev

# The connection is gone, or its protocol broken by the server's goodbye read before the
# socket's end (`pg_terminate_backend`, a restart): dropped from the pool, and the work
# runs again on a fresh one.
_LOST: Final = (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError,
                asyncpg.CrashShutdownError, asyncpg.CannotConnectNowError)
_DRIVER_ERRORS: Final = (asyncpg.PostgresError, *_LOST)
_FINAL: Final = sorted(ev.FINAL_STATES)
_SESSION: Final = tuple(c.name for c in sessions.c)
_PERSON: Final = tuple(c.name for c in session_participants.c)
# A group's sessions, locked, each joined with its participants when in `people` (a row
# for each), in one statement: one round trip less while the rows are locked. The ids go
# as arrays: an `IN ($1, $2...)` list is another statement for each length, prepared
# again by every pooled connection.
_LOAD_FROM: Final = (" FROM sessions AS s LEFT JOIN session_participants AS p"
                     " ON p.session_id = s.id AND s.id = ANY($2::varchar[])"
                     " WHERE s.id = ANY($1::varchar[]) ORDER BY s.id FOR UPDATE OF s")
_LOAD_COLUMNS: Final = (f"SELECT {', '.join(f's.{c}' for c in _SESSION)},"
                        f" {', '.join(f'p.{c}' for c in _PERSON)}")
LOAD: Final = _LOAD_COLUMNS + _LOAD_FROM
# The same with each session's answers (agent, offer), read when `Reads.answers` names
# sessions (`group.answered_again`). A statement of its own: a subquery in LOAD, even
# one never run, made its every run ~0.1 ms slower (PostgreSQL plans it for each run's
# arrays; with a generic plan forced the difference was gone).
LOAD_ANSWERS: Final = (
    f"{_LOAD_COLUMNS}, (SELECT json_agg(json_build_array(e.data->'agent_id',"
    " e.data->'offer')) FROM session_events AS e WHERE e.session_id = s.id"
    f" AND e.type = '{ev.ANSWERED}' AND e.data->>'offer' IS NOT NULL){_LOAD_FROM}")
OPEN_SESSIONS: Final = ("SELECT id, call_id FROM sessions WHERE state <> ALL($1::varchar[])"
                        " AND ($2::varchar[] IS NULL OR node_id = ANY($2::varchar[]))"
                        " ORDER BY id FOR UPDATE")


class PgRows:
    """`group.Rows` on the asyncpg connection of a pooled SQLAlchemy connection."""

    def __init__(self, pooled: PoolProxiedConnection, driver: asyncpg.Connection) -> None:
        self.pooled = pooled
        self.driver = driver

    def translated(self, exc: BaseException) -> DBAPIError:
        """SQLAlchemy's error for asyncpg's `exc`; a connection the server closed is
        dropped from the pool."""
        lost = self.driver.is_closed() or isinstance(exc, _LOST)
        if lost and self.pooled.is_valid:  # once: BEGIN's context may see it closed again
            self.pooled.invalidate(exc)
        kind = IntegrityError if isinstance(exc, asyncpg.IntegrityConstraintViolationError) \
            else DBAPIError
        return kind("session log", None, exc, connection_invalidated=lost)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            rows: list[asyncpg.Record] = await self.driver.fetch(sql, *args)
            return rows
        except _DRIVER_ERRORS as exc:
            raise self.translated(exc) from exc

    async def load(self, reads: Reads) -> Loaded:
        loaded: dict[str, Row] = {}
        people: dict[ParticipantKey, Row] = {}
        answers: dict[str, set[Answer]] = {}
        split, end = len(_SESSION), len(_SESSION) + len(_PERSON)
        sql = LOAD_ANSWERS if reads.answers else LOAD
        for row in await self._fetch(sql, list(reads.sessions), list(reads.people)):
            values = tuple(row)
            session = dict(zip(_SESSION, values[:split], strict=True))
            loaded.setdefault(session["id"], session)
            person = dict(zip(_PERSON, values[split:end], strict=True))
            if person["participant_id"] is not None:
                people[(person["session_id"], person["participant_id"])] = person
            if session["id"] in reads.answers and session["id"] not in answers:
                found = values[end] or []  # JSON, decoded by the engine's codec (SQLAlchemy's)
                answers[session["id"]] = logged_answers(
                    msgspec.json.decode(found) if isinstance(found, str) else found)
        return loaded, people, answers

    async def open_sessions(self, node_ids: Sequence[str] | None) -> list[tuple[str, str]]:
        ids = None if node_ids is None else list(node_ids)
        return [(row["id"], row["call_id"]) for row in await self._fetch(OPEN_SESSIONS,
                                                                         _FINAL, ids)]

    def savepoint(self) -> AbstractAsyncContextManager[object]:
        savepoint: AbstractAsyncContextManager[object] = self.driver.transaction()
        return savepoint  # nested in the append's transaction: a SAVEPOINT

    async def write(self, projection: Projection, events: list[dict[str, Any]]) -> None:
        await self._fetch(WRITE, *params(projection, events))


@asynccontextmanager
async def connection(db: AsyncEngine, transaction: bool,
                     committed: Callable[[], None] | None = None) -> AsyncIterator[PgRows]:
    """An append's rows on a pooled connection (`engine.pooled`): in a transaction, or
    (one statement that reads nothing) without one; `committed` runs as soon as the commit
    returned."""
    async with engine.pooled(db) as pooled:
        driver = pooled.driver_connection
        assert isinstance(driver, asyncpg.Connection)
        rows = PgRows(pooled, driver)
        try:
            if transaction:
                async with driver.transaction():
                    yield rows
            else:
                yield rows
        except _DRIVER_ERRORS as exc:  # BEGIN, COMMIT, ROLLBACK, a SAVEPOINT's end
            raise rows.translated(exc) from exc
        finally:  # a rollback cut short (cancelled): never back to the pool in a transaction
            if pooled.is_valid and not driver.is_closed() and driver.is_in_transaction():
                pooled.invalidate()
        if committed is not None:
            committed()
