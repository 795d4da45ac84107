"""`vwin` as an operator runs it: a subprocess, a TOML file, a database shared with the server."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from tests.helpers import connect, make_settings, refused

VWIN = str(Path(sys.executable).with_name("vwin"))


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"exit {self.code}\nstdout: {self.out}\nstderr: {self.err}"


async def vwin(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Result:
    """Run the installed console script to completion."""
    proc = await asyncio.create_subprocess_exec(
        VWIN, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in {**os.environ, **(env or {})}.items()
             if not k.startswith("VWIN_") or (env and k in env)})
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def write_config(path: Path, storage_url: str, extra: str = "") -> str:
    path.write_text(f'[storage]\nurl = "{storage_url}"\n{extra}')
    return str(path)


# The CLI does not route calls: these tests build the app directly, on the memory backend only.


@pytest.fixture
def config(tmp_path: Path, sqlite_url: str) -> str:
    return write_config(tmp_path / "vwin.toml", sqlite_url)


async def test_user_add_then_login(config: str, sqlite_url: str, aiohttp_client: Any) -> None:
    added = await vwin("user", "add", "alice", "--role", "specialist", "--skills",
                       "tax:1,registration:2", "--department", "tax", "--config", config,
                       stdin="correct horse battery\n")
    assert added.code == 0, added
    client = await aiohttp_client(create_app(make_settings(sqlite_url)))
    resp = await client.post("/api/login", json={"username": "alice",
                                                 "password": "correct horse battery"})
    assert resp.status == 200
    token = (await resp.json())["token"]
    me = await (await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["skills"] == {"tax": 1, "registration": 2} and me["department"] == "tax"
    again = await vwin("user", "add", "alice", "--role", "manager", "--config", config,
                       stdin="another one\n")
    assert again.code != 0 and "alice" in again.err


@pytest.mark.parametrize("skills,named", [("tax:x", "tax:x"), ("fishing:1", "fishing")])
async def test_user_add_bad_skills(config: str, skills: str, named: str) -> None:
    result = await vwin("user", "add", "bob", "--role", "specialist", "--skills", skills,
                        "--config", config, stdin="pw-pw-pw\n")
    assert result.code != 0 and named in result.err, result


async def test_user_add_names_a_configured_department(config: str) -> None:
    """`--department` must be a `[[departments]]` id; the error lists the ones there are."""
    result = await vwin("user", "add", "bob", "--role", "specialist", "--department",
                        "Tax bureau", "--config", config, stdin="pw-pw-pw-pw\n")
    assert result.code == 2, result
    assert "unknown department 'Tax bureau'" in result.err
    assert "market_regulation (市场监管)" in result.err and "tax (税务)" in result.err


async def test_user_add_without_password_on_stdin(config: str) -> None:
    result = await vwin("user", "add", "bob", "--role", "manager", "--config", config)
    assert result.code != 0 and "password" in result.err, result


async def test_site_and_terminal_lifecycle(config: str, sqlite_url: str,
                                           aiohttp_client: Any) -> None:
    site = await vwin("site", "add", "jd-park", "--name", "Jiading Park", "--kind", "park",
                      "--config", config)
    assert site.code == 0, site
    bad_kind = await vwin("site", "add", "x", "--name", "X", "--kind", "castle",
                          "--config", config)
    assert bad_kind.code != 0 and "castle" in bad_kind.err
    added = await vwin("terminal", "add", "JD-01", "--site", "jd-park", "--name", "Lobby",
                       "--config", config)
    assert added.code == 0, added
    token = added.out.strip().splitlines()[-1]
    assert token.startswith("vwt_") and " " not in token
    orphan = await vwin("terminal", "add", "JD-02", "--site", "nowhere", "--config", config)
    assert orphan.code != 0 and "nowhere" in orphan.err, orphan
    client = await aiohttp_client(create_app(make_settings(sqlite_url)))
    kiosk = await connect(client, token)
    assert (kiosk.welcome["id"], kiosk.welcome["site"]["name"]) == ("JD-01", "Jiading Park")
    await kiosk.close()
    revoked = await vwin("terminal", "revoke", "JD-01", "--config", config)
    assert revoked.code == 0, revoked
    error, code = await refused(client, {"type": "hello", "token": token})
    assert (error["code"], code) == ("unauthorized", 4401)
    missing = await vwin("terminal", "revoke", "JD-99", "--config", config)
    assert missing.code != 0 and "JD-99" in missing.err


async def test_unknown_config_key_exits_2(tmp_path: Path, sqlite_url: str) -> None:
    path = write_config(tmp_path / "typo.toml", sqlite_url, "[server]\nprot = 9000\n")
    result = await vwin("site", "add", "s", "--name", "S", "--kind", "park", "--config", path)
    assert result.code == 2 and "server.prot" in result.err, result
    result = await vwin("db", "upgrade", env={"VWIN_SERVER_PROT": "9000"})
    assert result.code == 2 and "prot" in result.err.lower(), result


async def test_db_upgrade_on_postgresql(tmp_path: Path, fresh_pg_url: str) -> None:
    config = write_config(tmp_path / "pg.toml", fresh_pg_url)
    upgraded = await vwin("db", "upgrade", "--config", config)
    assert upgraded.code == 0, upgraded
    site = await vwin("site", "add", "pg-site", "--name", "PG", "--kind", "other",
                      "--config", config)
    assert site.code == 0, site
    again = await vwin("db", "upgrade", "--config", config)
    assert again.code == 0, again
