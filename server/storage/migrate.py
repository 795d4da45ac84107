"""Alembic, configured in code: no alembic.ini, migrations shipped in `server/migrations`.

`upgrade(url)` is what `vwin db upgrade` runs (through `upgrade_sync`);
`Database.upgrade()` runs the same on its own engine when `serve` starts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from server.storage.engine import make_engine

MIGRATIONS: Final = Path(__file__).resolve().parent.parent / "migrations"
# Two nodes starting at once against one PostgreSQL: the second waits for the first.
_PG_UPGRADE_LOCK: Final = 0x7657494E  # "vWIN"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at our migrations (and at `url` when given)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate through an existing engine, in one transaction."""
    async with engine.connect() as conn:
        await conn.execution_options(vwin_write=True)  # SQLite: BEGIN IMMEDIATE
        async with conn.begin():
            if engine.dialect.name == "postgresql":
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_UPGRADE_LOCK}
                )
            await conn.run_sync(_upgrade, revision)


async def current_revision(url: str) -> str | None:
    """The revision the database is at; None for an empty database."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


async def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest migration."""
    engine = make_engine(url)
    try:
        await upgrade_engine(engine)
    finally:
        await engine.dispose()


def upgrade_sync(url: str) -> None:
    """`upgrade` for synchronous callers (the CLI); refuses to nest in a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(upgrade(url))
        return
    raise RuntimeError("upgrade_sync() inside a running event loop: await upgrade(url)")
