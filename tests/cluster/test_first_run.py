"""Two nodes starting together on an empty database: one `admin`, no crash."""

from __future__ import annotations

import asyncio

import pytest

from server.commands import _first_run
from server.config import load_settings
from server.storage.db import Database


async def test_nodes_racing_on_an_empty_database_make_one_admin(
        pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = await Database.connect(pg_url)
    try:
        await db.upgrade()
        settings = load_settings(env={}, overrides={"storage": {"url": pg_url}})
        await asyncio.gather(*(_first_run(settings) for _ in range(3)))
        users = await db.list_users()
    finally:
        await db.close()
    assert [u.id for u in users] == ["admin"]
    assert capsys.readouterr().out.count("created manager account `admin`") == 1
