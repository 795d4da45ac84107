"""Engine construction: per-backend settings and the transaction helpers of every store.

SQLite gets WAL (readers never block the writer), foreign keys, a busy
timeout, and `BEGIN IMMEDIATE` for write transactions so that two writers
queue on the busy timeout instead of failing on a lock upgrade. Within one
process, writers also queue on an asyncio lock (FIFO): SQLite's busy handler
polls with back-off and starves some writers under a burst of concurrent calls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection, PoolResetState
from sqlalchemy.util import greenlet_spawn

from server.steptrace import waiting
from server.storage import sqlite_trips
from server.storage.errors import DatabaseClosed, InvalidRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

Clock = Callable[[], dt.datetime]

SQLITE_BUSY_TIMEOUT_MS: Final = 10_000  # a CLI write next to `serve` waits, never fails
_WRITE_OPTION: Final = "vwin_write"
# Waits before running a transaction again on a fresh connection, after the database
# closed the one it ran on (restarted, or its connections terminated): every pooled
# connection may be dead, and each is found so only when used.
DISCONNECT_RETRY_S: Final = (0.0, 0.1, 0.3, 1.0, 2.0)
# PostgreSQL connections kept open by the pool (SQLAlchemy's default is 5; 10 more may be
# opened for a moment, and were closed again as soon as returned). A busy node holds more
# than 5 at once (the session log's group commit, hellos, ratings, bookings, /metrics): at the
# goal-size day's peak node 2 spent ~2 % of its busy time opening and closing connections,
# each several round trips and its statements prepared anew. Opened only when needed.
PG_POOL_KEPT: Final = 15


def utcnow() -> dt.datetime:
    """The default clock: aware UTC."""
    return dt.datetime.now(dt.UTC)


def require_aware(**stamps: dt.datetime | None) -> None:
    """Refuse naive datetimes by argument name, before they reach SQL."""
    for name, value in stamps.items():
        if value is not None and (not isinstance(value, dt.datetime) or value.utcoffset() is None):
            raise InvalidRecord(f"{name} must be a timezone-aware datetime, got {value!r}")


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def _local_hour_of_minute(minute: str, tz: str) -> int:
    utc = dt.datetime.fromisoformat(minute).replace(tzinfo=dt.UTC)
    return utc.astimezone(_zone(tz)).hour


def _sqlite_local_hour(stored: str | None, tz: str) -> int | None:
    """SQL function `vwin_local_hour(ts, tz)`: SQLite has no time zones of its own.

    Offsets are whole minutes, so the stored text up to the minute decides the hour.
    """
    if stored is None:
        return None
    return _local_hour_of_minute(stored[:16], tz)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see _on_sqlite_begin
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=FULL")  # a commit survives power loss
    cursor.close()
    dbapi_connection.create_function("vwin_local_hour", 2, _sqlite_local_hour, deterministic=True)


def _on_sqlite_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
    """A connection back in the pool is rolled back only if a transaction is still open.

    Every transaction here ends with its own COMMIT or ROLLBACK (`_read`, `_write`), so
    SQLAlchemy's rollback-on-return had nothing to undo; yet on aiosqlite it is one more
    round trip to the connection's thread, and the session log's committer paid it before
    the next group could begin: the specialist's `call.accept` right after `call.offered`
    waited for it. A transaction left open (a task cancelled mid-way) is still rolled
    back, so its `BEGIN IMMEDIATE` never holds the database's write lock in the pool."""
    if state.terminate_only or not state.asyncio_safe or state.transaction_was_reset:
        return
    driver = getattr(dbapi_connection, "_connection", None)
    if driver is None or getattr(driver, "in_transaction", True):
        dbapi_connection.rollback()


def _on_sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


async def on_live_connection(work: Callable[[], Awaitable[T]], what: str) -> T:
    """`work` (one whole transaction), again while it fails because its connection was
    closed under it: the pool drops such a connection (`connection_invalidated`), and
    a transaction cut before its COMMIT wrote nothing."""
    for delay in DISCONNECT_RETRY_S:
        try:
            return await work()
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.warning("%s: the database closed the connection (%s); again in %.1f s",
                        what, exc.orig, delay)
        await asyncio.sleep(delay)
    return await work()


@asynccontextmanager
async def pooled(engine: AsyncEngine) -> AsyncIterator[PoolProxiedConnection]:
    """A connection straight from the pool, back to it on exit (with the pool's reset),
    for work that runs no SQLAlchemy statement (the session log's appends, `pg_rows`,
    `sqlite_rows`): no `Connection` around it, one greenlet switch less each way."""
    connection = await engine.raw_connection()
    try:
        yield connection
    finally:
        await greenlet_spawn(connection.close)


def make_engine(url: str) -> AsyncEngine:
    """An async engine for `sqlite+aiosqlite:///path` or `postgresql+asyncpg://...`."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported storage url {parsed.render_as_string()!r}")
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    driver: dict[str, Any] = {}
    if backend == "sqlite" and parsed.get_driver_name() == "aiosqlite":
        one_trip = sqlite_trips.dbapi()  # one round trip per statement
        if one_trip is not None:
            driver["module"] = one_trip
    if backend == "postgresql":
        driver["pool_size"] = PG_POOL_KEPT
    engine = create_async_engine(
        parsed, json_serializer=_json_dumps, json_deserializer=msgspec.json.decode,
        # SQLite: the pool's rollback-on-return is `_on_sqlite_reset`, only when needed
        pool_reset_on_return=None if backend == "sqlite" else "rollback", **driver,
    )
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
        event.listen(engine.sync_engine.pool, "reset", _on_sqlite_reset)
    return engine


class StoreBase:
    """What every store mixin of `Database` shares: the engine, the clock, transactions."""

    _engine: AsyncEngine
    _clock: Clock
    _closed: bool
    _write_lock: asyncio.Lock | None  # SQLite only: one writer at a time in this process

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._engine.dialect.name

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction (snapshot on SQLite WAL). On PostgreSQL the statements run
        in autocommit: at READ COMMITTED each one has its own snapshot either way, and
        BEGIN and COMMIT were two of a one-statement read's three round trips."""
        if self._closed:
            raise DatabaseClosed("database is closed")
        with waiting("database read"):
            async with self._engine.connect() as conn:
                if self._engine.dialect.name == "postgresql":
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                async with conn.begin():
                    yield conn

    @asynccontextmanager
    async def _write(self, committed: Callable[[], None] | None = None
                     ) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on exit, rolled back on any exception.

        `committed` runs as soon as the COMMIT returned, before the connection goes back
        to the pool (whose rollback-on-return is one more round trip nobody need wait for)."""
        if self._closed:
            raise DatabaseClosed("database is closed")
        turn: AbstractAsyncContextManager[object] = self._write_lock or nullcontext()
        with waiting("database write"):
            async with turn, self._engine.connect() as conn:
                await conn.execution_options(**{_WRITE_OPTION: True})
                async with conn.begin():
                    yield conn
                if committed is not None:
                    committed()

    async def _written(self, work: Callable[[AsyncConnection], Awaitable[T]], what: str) -> T:
        """`work` in a write transaction, run again on a fresh connection when the database
        closed the one it ran on (`on_live_connection`); for writes a second run cannot
        double."""
        async def once() -> T:
            async with self._write() as conn:
                return await work(conn)
        return await on_live_connection(once, what)
