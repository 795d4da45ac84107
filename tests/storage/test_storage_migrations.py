"""Migrations: an empty database reaches head and matches the code's tables; twice is a no-op."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from server.storage import Database
from server.storage.engine import make_engine
from server.storage.migrate import alembic_config, current_revision, upgrade, upgrade_sync
from server.storage.schema import metadata

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_upgrade_from_empty_reaches_head_and_matches_the_code(storage_url: str) -> None:
    assert HEAD is not None
    assert await current_revision(storage_url) is None
    await upgrade(storage_url)
    assert await current_revision(storage_url) == HEAD
    engine = make_engine(storage_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_upgrade_twice_keeps_the_data(storage_url: str) -> None:
    db = await Database.connect(storage_url)
    try:
        await db.upgrade()
        await db.add_site("jd-park", "Jiading Park", "park")
        await db.upgrade()
        assert [s.id for s in await db.list_sites()] == ["jd-park"]
    finally:
        await db.close()
    assert await current_revision(storage_url) == HEAD


async def test_sync_entry_runs_outside_a_loop(storage_url: str) -> None:
    await asyncio.to_thread(upgrade_sync, storage_url)
    assert await current_revision(storage_url) == HEAD
    with pytest.raises(RuntimeError, match="running event loop"):
        upgrade_sync(storage_url)
