"""`vwin backup` while a real server runs and writes; `vwin restore` into a fresh place."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from server.storage.db import Database
from tests.helpers import WAIT_S
from tests.test_crash_recovery import VWIN, Server, free_port, hello, provision

MANIFEST = "2026/12/03/s-1/terminal-T1-1.json"


async def vwin(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        VWIN, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_backup_while_serving_and_restore(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'live' / 'vwin.db'}"
    (tmp_path / "live").mkdir()
    terminal, specialist, _ = await provision(url)
    recordings = tmp_path / "live" / "recordings"
    (recordings / MANIFEST).parent.mkdir(parents=True)
    (recordings / MANIFEST).write_text(json.dumps({"segment": 1, "state": "finished"}))
    port = free_port()
    live = tmp_path / "live.toml"
    live.write_text(f'[server]\nport = {port}\n[storage]\nurl = "{url}"\n'
                    f'[recording]\nenabled = false\ndir = "{recordings}"\n')
    server = Server(live, port)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as http:
        try:
            await server.start(http)
            agent = await hello(http, server.base, specialist)  # logged in, away: calls wait
            kiosk = await hello(http, server.base, terminal)
            made: list[str] = []

            async def calls(count: int) -> None:
                for _ in range(count):
                    await kiosk.send({"type": "call.request", "queue": "tax"})
                    queued = await kiosk.recv("call.queued")
                    await kiosk.send({"type": "call.cancel", "call_id": queued["call_id"]})
                    await kiosk.recv("call.ended", call_id=queued["call_id"])
                    made.append(queued["call_id"])

            await calls(5)
            before = len(made)
            writer = asyncio.create_task(calls(40))
            code, out, err = await vwin("backup", str(tmp_path / "bk"), "--config", str(live))
            during = len(made)
            await writer
            assert code == 0, err
            assert "1 manifest(s)" in out
            assert during > before, "calls were made while the backup ran"
            del agent
        finally:
            await server.kill()

    fresh = tmp_path / "fresh"
    restored_url = f"sqlite+aiosqlite:///{fresh / 'vwin.db'}"
    restored = tmp_path / "fresh.toml"
    restored.write_text(f'[storage]\nurl = "{restored_url}"\n'
                        f'[recording]\ndir = "{fresh / "recordings"}"\n')
    code, out, err = await vwin("restore", str(tmp_path / "bk"), "--config", str(restored))
    assert code == 0, err
    assert json.loads((fresh / "recordings" / MANIFEST).read_text())["segment"] == 1
    db = await Database.connect(restored_url)
    try:
        rows, _ = await db.list_sessions(limit=500)
        ids = {s.call_id for s in rows}
        assert set(made[:before]) <= ids  # everything before the backup is there
        assert before <= len(ids) <= len(made)
        states = [s.state for s in rows]  # one snapshot: at most the call in flight is open
        assert set(states) <= {"abandoned", "queued"} and states.count("queued") <= 1
    finally:
        await db.close()
    # Restoring over an existing database needs --force; the copy is never half-written.
    code, _, err = await vwin("restore", str(tmp_path / "bk"), "--config", str(restored))
    assert code == 1 and "exists" in err


async def test_backup_refuses_postgresql_and_a_used_directory(tmp_path: Path) -> None:
    pg = tmp_path / "pg.toml"
    pg.write_text('[storage]\nurl = "postgresql+asyncpg://vwin@127.0.0.1/vwin"\n')
    code, _, err = await vwin("backup", str(tmp_path / "x"), "--config", str(pg))
    assert code == 1 and "pg_dump" in err
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    sqlite = tmp_path / "s.toml"
    sqlite.write_text(f'[storage]\nurl = "sqlite+aiosqlite:///{tmp_path / "nothing.db"}"\n')
    code, _, err = await vwin("backup", str(tmp_path / "used"), "--config", str(sqlite))
    assert code == 1 and "no database" in err
    assert (tmp_path / "used" / "keep.txt").read_text() == "mine"
