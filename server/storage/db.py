"""`Database`: the one handle the server holds on durable storage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Self

from server.storage.accounts import AccountStore
from server.storage.actions import ActionStore
from server.storage.appointments import AppointmentStore
from server.storage.documents import DocumentStore
from server.storage.engine import Clock, make_engine, utcnow
from server.storage.figures import FigureStore
from server.storage.forms import FormStore
from server.storage.handoffs import HandoffStore
from server.storage.lanes import GROUPS_IN_FLIGHT, Lanes
from server.storage.matters import MatterStore
from server.storage.migrate import upgrade_engine
from server.storage.recordings import RecordingStore
from server.storage.reports import ReportStore
from server.storage.sessionlog import SessionLog
from server.storage.sites import SiteStore
from server.storage.staffing import StaffingStore
from server.storage.units import UnitStore


class Database(AccountStore, SiteStore, SessionLog, FigureStore, ActionStore, MatterStore,
               ReportStore, RecordingStore, UnitStore, AppointmentStore, HandoffStore,
               DocumentStore, FormStore, StaffingStore):
    """Accounts, sites and terminals, the session log and its figures.

    Build with `await Database.connect(url)`; `close()` is safe to call twice.
    """

    def __init__(self, url: str, clock: Clock = utcnow) -> None:
        self._engine = make_engine(url)
        self._clock = clock
        self._closed = False
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._lanes = Lanes(GROUPS_IN_FLIGHT[self.dialect])
        self._committers = set()
        self._starting = False
        self.append_observer = None
        self.group_observer = None

    @classmethod
    async def connect(cls, url: str, *, clock: Clock = utcnow) -> Self:
        """Open the engine and check that the database answers."""
        db = cls(url, clock)
        try:
            async with db._read() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except BaseException:
            await db.close()
            raise
        return db

    async def ping(self) -> None:
        """One round trip (`SELECT 1`): raises when the database does not answer."""
        async with self._read() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def upgrade(self) -> None:
        """Bring the schema to the newest migration (Alembic `head`)."""
        await upgrade_engine(self._engine)

    async def close(self) -> None:
        """Release every pooled connection; later calls raise `DatabaseClosed`."""
        if self._closed:
            return
        await self._drain()
        self._closed = True
        await self._engine.dispose()


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[Database]:
    """A connected `Database`, closed on exit. An embedded SQLite file is brought to the
    newest schema on the way in; PostgreSQL is upgraded by `vwin db upgrade` (one node)."""
    db = await Database.connect(url)
    try:
        if db.dialect == "sqlite":
            await db.upgrade()
        yield db
    finally:
        await db.close()
