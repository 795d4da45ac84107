"""One embedded server per database: a second `vwin serve` exits at once and changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from server.dblock import DatabaseLock, DatabaseLocked
from tests.helpers import WAIT_S, bearer
from tests.test_crash_recovery import VWIN, Server, call_in_progress, free_port, provision

SECOND_EXIT_S = 60.0  # a cold interpreter on a busy machine


def config(tmp_path: Path, name: str, url: str) -> tuple[Path, int]:
    port = free_port()
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[server]\nport = {port}\nidle_timeout_s = 600\n'  # the test waits, silent
                    f'[storage]\nurl = "{url}"\n[recording]\nenabled = false\n')
    return path, port


async def second_start_is_refused(tmp_path: Path, url: str) -> None:
    terminal, specialist, manager = await provision(url)
    first_config, port = config(tmp_path, "first", url)
    first = Server(first_config, port)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT_S)) as http:
        try:
            await first.start(http)
            agent, kiosk, connected = await call_in_progress(http, first.base, terminal,
                                                             specialist)

            second_config, _ = config(tmp_path, "second", url)  # its own port: the lock stops it
            proc = await asyncio.create_subprocess_exec(
                VWIN, "serve", "--config", str(second_config),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), SECOND_EXIT_S)
            assert proc.returncode == 2
            lines = err.decode().strip().splitlines()
            assert len(lines) == 1 and "in use by another vwin serve" in lines[0], lines
            assert out == b""

            async with http.get(first.base + "/api/sessions", headers=bearer(manager)) as resp:
                rows = (await resp.json())["sessions"]
            assert [(r["id"], r["state"]) for r in rows] == [
                (connected["session_id"], "connected")]
            await kiosk.send({"type": "call.hangup", "call_id": connected["call_id"]})
            assert (await agent.recv("call.ended"))["reason"] == "hangup"
            async with http.get(first.base + "/api/sessions", headers=bearer(manager)) as resp:
                rows = (await resp.json())["sessions"]
            assert [(r["state"], r["end_reason"]) for r in rows] == [("ended", "hangup")]
        finally:
            await first.kill()


async def test_second_server_on_sqlite_exits(tmp_path: Path) -> None:
    await second_start_is_refused(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}")


async def test_second_server_on_postgresql_exits(tmp_path: Path, fresh_pg_url: str) -> None:
    await second_start_is_refused(tmp_path, fresh_pg_url)


async def test_lock_is_freed_with_its_holder(tmp_path: Path, fresh_pg_url: str) -> None:
    for url in (f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}", fresh_pg_url):
        first, second = DatabaseLock(url), DatabaseLock(url)
        await first.acquire()
        try:
            await second.acquire()
        except DatabaseLocked as exc:
            assert "in use by another vwin serve" in str(exc)
        else:
            raise AssertionError(f"two locks on {url}")
        await first.release()
        await second.acquire()  # the first holder is gone: the next one gets it
        await second.release()
