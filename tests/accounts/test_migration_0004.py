"""Migration 0004 on a database that already has accounts and sites (SQLite, PostgreSQL):
they keep working, with no unit and no password to change."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from server.storage import Database
from server.storage.engine import make_engine
from server.storage.migrate import alembic_config, upgrade_engine


def test_0004_follows_0003() -> None:
    script = ScriptDirectory.from_config(alembic_config()).get_revision("0004")
    assert script is not None and script.down_revision == "0003"


async def test_upgrade_from_0003_keeps_accounts_and_sites(storage_url: str) -> None:
    engine = make_engine(storage_url)
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    try:
        await upgrade_engine(engine, "0003")
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "INSERT INTO users (id, username, role, password_hash, name, skills, disabled,"
                " created_at) VALUES ('lin', 'lin', 'specialist', 'h', '林晓', '{}', false, :t)"),
                {"t": now})
            await conn.execute(sa.text(
                "INSERT INTO sites (id, name, kind, created_at)"
                " VALUES ('jd-park', '嘉定园区', 'park', :t)"), {"t": now})
        await upgrade_engine(engine)
    finally:
        await engine.dispose()
    db = await Database.connect(storage_url)
    try:
        user = await db.get_user("lin")
        assert user is not None and user.name == "林晓"
        assert (user.unit_id, user.must_change_password) == (None, False)
        site = await db.get_site("jd-park")
        assert site is not None and site.unit_id is None
        await db.add_unit("jd", "嘉定区", "district")
        await db.set_site_unit("jd-park", "jd")
        assert [s.id for s in await db.list_sites(await db.scope_of(
            await db.update_user("lin", {"unit_id": "jd"})))] == ["jd-park"]
        assert [c.action for c in await db.account_changes()] == []
    finally:
        await db.close()
