"""Users, login tokens, sites and terminals as the CLI and the login/hello handlers use them."""

from __future__ import annotations

import datetime as dt

import pytest

from server.storage import (
    AlreadyExists,
    Database,
    DatabaseClosed,
    InvalidRecord,
    UnknownSite,
    UnknownUser,
)

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"


async def test_users_roundtrip_and_duplicates(database: Database) -> None:
    alice = await database.add_user(
        "alice", "specialist", HASH, "王丽", department="Tax", skills={"tax": 1, "general": 2}
    )
    await database.add_user("mgr", "manager", HASH, "Manager")
    assert alice.id == "alice" and alice.skills == {"tax": 1, "general": 2}
    assert await database.get_user("alice") == alice
    assert await database.get_user_by_username("alice") == alice
    assert await database.get_user("nobody") is None
    login = await database.get_login("alice")
    assert login is not None and login.password_hash == HASH and login.user == alice
    assert [u.id for u in await database.list_users()] == ["alice", "mgr"]
    assert [u.id for u in await database.list_users(role="manager")] == ["mgr"]
    with pytest.raises(AlreadyExists):
        await database.add_user("alice", "manager", HASH, "Other")
    assert (await database.get_user("alice")) == alice


@pytest.mark.parametrize(
    ("username", "role", "skills"),
    [
        ("bob", "admin", {}),
        ("", "specialist", {}),
        (" bob", "specialist", {}),
        ("bob", "specialist", {"tax": 0}),
        ("bob", "specialist", {"tax": "1"}),
    ],
)
async def test_bad_users_are_refused(
    database: Database, username: str, role: str, skills: dict[str, object]
) -> None:
    with pytest.raises(InvalidRecord):
        await database.add_user(username, role, HASH, "Bob", skills=skills)  # type: ignore[arg-type]
    assert await database.list_users() == []


async def test_tokens_expire_and_die_with_disabled_users(database: Database) -> None:
    await database.add_user("alice", "specialist", HASH, "Alice")
    await database.add_token("a" * 64, "alice", NOW + dt.timedelta(hours=12))
    await database.add_token("b" * 64, "alice", NOW - dt.timedelta(seconds=1))
    user = await database.get_token_user("a" * 64, NOW)
    assert user is not None and user.id == "alice"
    assert await database.get_token_user("a" * 64, NOW + dt.timedelta(hours=12)) is None
    assert await database.get_token_user("b" * 64, NOW) is None
    assert await database.get_token_user("c" * 64, NOW) is None
    with pytest.raises(UnknownUser):
        await database.add_token("c" * 64, "ghost", NOW)
    with pytest.raises(AlreadyExists):
        await database.add_token("a" * 64, "alice", NOW)

    assert await database.purge_expired(NOW) == 1
    assert await database.delete_token("a" * 64)
    assert not await database.delete_token("a" * 64)
    assert await database.get_token_user("a" * 64, NOW) is None

    await database.add_token("d" * 64, "alice", NOW + dt.timedelta(hours=12))
    assert await database.set_disabled("alice", True)
    assert await database.get_token_user("d" * 64, NOW) is None
    assert await database.set_disabled("alice", False)
    assert await database.get_token_user("d" * 64, NOW) is None  # disabling ended the login


async def test_sites_and_terminals(database: Database) -> None:
    site = await database.add_site("jd-mr", "Jiading New City market office", "market_office")
    with pytest.raises(AlreadyExists):
        await database.add_site("jd-mr", "Again", "park")
    with pytest.raises(InvalidRecord):
        await database.add_site("x", "X", "castle")
    with pytest.raises(UnknownSite):
        await database.add_terminal("t1", "nowhere", "Lobby", "h1" * 32)

    terminal = await database.add_terminal("t1", "jd-mr", "Lobby screen", "h1" * 32)
    await database.add_terminal("t2", "jd-mr", "", "h2" * 32)
    with pytest.raises(AlreadyExists):
        await database.add_terminal("t1", "jd-mr", "Dup id", "h3" * 32)
    with pytest.raises(AlreadyExists):
        await database.add_terminal("t3", "jd-mr", "Dup token", "h1" * 32)

    assert terminal.site == site
    assert await database.get_site("jd-mr") == site
    assert await database.terminal_by_token_hash("h1" * 32) == terminal
    assert [t.id for t in await database.list_terminals()] == ["t1", "t2"]
    assert (await database.list_terminals(site_id="jd-mr"))[1].name == "t2"

    await database.touch_terminals(["t2", "ghost"], NOW)
    seen = {t.id: t.last_seen_at for t in await database.list_terminals()}
    assert seen == {"t1": None, "t2": NOW}

    assert await database.revoke_terminal("t1")
    assert await database.terminal_by_token_hash("h1" * 32) is None
    revoked = await database.get_terminal("t1")
    assert revoked is not None and revoked.revoked_at is not None
    assert await database.revoke_terminal("t1")
    assert not await database.revoke_terminal("ghost")
    assert await database.terminal_by_token_hash("h2" * 32) is not None


async def test_close_is_idempotent_and_final(database_url: str) -> None:
    db = await Database.connect(database_url)
    await db.upgrade()
    await db.close()
    await db.close()
    with pytest.raises(DatabaseClosed):
        await db.list_sites()
