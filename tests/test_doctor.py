"""`vwin doctor`: a good configuration passes; each mistake an operator makes fails its line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server import doctor
from server.storage.db import Database
from tests.cluster.fixtures import REDIS_URL
from tests.edge.serve import self_signed
from tests.helpers import make_settings
from tests.test_crash_recovery import VWIN, free_port


async def migrated(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}"
    db = await Database.connect(url)
    await db.upgrade()
    await db.close()
    return url


async def cli(config: Path) -> tuple[int, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        VWIN, "doctor", "--config", str(config), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode().splitlines()


async def test_good_configuration_passes_every_check(tmp_path: Path) -> None:
    url = await migrated(tmp_path)
    config = tmp_path / "good.toml"
    config.write_text(
        f'[server]\nhost = "0.0.0.0"\nallowed_origins = ["https://vwin.example.gov.cn"]\n'
        f'[storage]\nurl = "{url}"\n[routing]\nbackend = "redis"\nredis_url = "{REDIS_URL}"\n'
        f'[recording]\ndir = "{tmp_path / "rec"}"\n')
    code, lines = await cli(config)
    assert code == 0, lines
    assert [line.split()[1] for line in lines] == [name for name, _ in doctor.CHECKS]
    assert all(line.split()[0] in ("ok", "skip") for line in lines)
    assert "h of two-party sessions" in lines[2]


async def test_each_mistake_fails_its_check(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    (tmp_path / "file").write_text("not a directory")
    config.write_text(
        f'[server]\nhost = "0.0.0.0"\n[storage]\nurl = "sqlite+aiosqlite:///{tmp_path}/none.db"\n'
        f'[routing]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:{free_port()}/0"\n'
        f'[recording]\ndir = "{tmp_path / "file" / "rec"}"\nlocal_recorder = false\n')
    code, lines = await cli(config)
    assert code == 1
    status = {line.split()[1]: line.split()[0] for line in lines}
    assert status == {"database": "FAIL", "redis": "FAIL", "recording-dir": "FAIL",
                      "tls": "skip", "origins": "FAIL", "turn": "skip", "recorder": "FAIL"}, lines
    assert "allowed_origins is empty" in lines[4]


async def test_database_that_does_not_answer_or_has_no_schema(tmp_path: Path) -> None:
    down = make_settings(f"postgresql+asyncpg://vwin@127.0.0.1:{free_port()}/vwin")
    status, detail = await doctor.check_database(down)
    assert status == "FAIL" and "does not answer" in detail
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    status, detail = await doctor.check_database(make_settings(f"sqlite+aiosqlite:///{empty}"))
    assert status == "FAIL" and "vwin db upgrade" in detail


async def test_recording_space_is_counted_in_hours(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings("sqlite+aiosqlite:///x.db",
                             recording={"enabled": True, "dir": str(tmp_path)})
    assert (await doctor.check_recording_dir(settings))[0] == "ok"
    monkeypatch.setattr(doctor, "MIN_RECORDING_HOURS", 1e12)  # more than any disk holds
    status, detail = await doctor.check_recording_dir(settings)
    assert status == "FAIL" and "GB free" in detail


@pytest.mark.parametrize(("days", "status", "says"), [
    (90, "ok", "valid until"), (3, "FAIL", "renew"), (-1, "FAIL", "expired")])
async def test_tls_certificate_validity(tmp_path: Path, days: float, status: str,
                                        says: str) -> None:
    cert, key = self_signed(tmp_path, valid_days=days)
    settings = make_settings("sqlite+aiosqlite:///x.db",
                             server={"tls_cert": str(cert), "tls_key": str(key)})
    got, detail = await doctor.check_tls(settings)
    assert got == status and says in detail, detail
    cert.write_text("not a certificate")
    assert (await doctor.check_tls(settings))[0] == "FAIL"


@pytest.mark.parametrize(("host", "origins", "status"), [
    ("127.0.0.1", [], "ok"),
    ("0.0.0.0", ["https://vwin.example.gov.cn"], "ok"),
    ("0.0.0.0", [], "FAIL"),
    ("0.0.0.0", ["http://vwin.example.gov.cn"], "FAIL"),  # no camera without HTTPS
    ("0.0.0.0", ["https://vwin.example.gov.cn/kiosk"], "FAIL"),  # a URL, not an origin
])
async def test_public_origin(host: str, origins: list[str], status: str) -> None:
    settings = make_settings("sqlite+aiosqlite:///x.db",
                             server={"host": host, "allowed_origins": origins})
    assert (await doctor.check_origins(settings))[0] == status


async def test_remote_recorders_need_a_credential(tmp_path: Path) -> None:
    url = await migrated(tmp_path)
    settings = make_settings(url, recording={"enabled": True, "local_recorder": False})
    assert (await doctor.check_recorder(settings))[0] == "FAIL"
    db = await Database.connect(url)
    await db.add_recorder("rec-b", "0" * 64)
    await db.close()
    status, detail = await doctor.check_recorder(settings)
    assert status == "ok" and "rec-b" in detail

