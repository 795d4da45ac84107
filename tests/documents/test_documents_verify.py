"""`vwin recording verify` re-hashes the captured documents too; retention deletes them."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from server import keys
from server.recording.catalog import purge_expired_documents
from tests.documents.conftest import files_under, licence_photo, png_photo
from tests.helpers import bearer

ROOT = Path(__file__).resolve().parents[2]


def _verify(url: str, directory: Path) -> tuple[int, str]:
    env = {**os.environ, "VWIN_STORAGE_URL": f'"{url}"', "VWIN_RECORDING_DIR": str(directory)}
    done = subprocess.run([sys.executable, "-m", "server.cli", "recording", "verify"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    return done.returncode, done.stdout + done.stderr


async def _upload(client: Any, call: Any, body: bytes, content_type: str) -> dict[str, Any]:
    resp = await client.post(f"/api/sessions/{call.session_id}/documents", data=body,
                             headers=bearer(call.kiosk_token) | {"Content-Type": content_type})
    assert resp.status == 201, await resp.text()
    return (await resp.json())["document"]  # type: ignore[no-any-return]


async def test_verify_names_an_altered_and_a_missing_document(
        client: Any, call: Any, sqlite_url: str, recording_dir: Path) -> None:
    altered = await _upload(client, call, licence_photo(), "image/jpeg")
    missing = await _upload(client, call, png_photo(), "image/png")
    code, out = await asyncio.to_thread(_verify, sqlite_url, recording_dir)
    assert code == 0 and "0 recording(s) and 2 document(s) checked, 0 missing" in out, out

    db = client.server.app[keys.DB]
    rows = {d.id: d for d in await db.list_documents(call.session_id)}
    path = recording_dir / rows[altered["id"]].path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size
    path.write_bytes(bytes(data))
    (recording_dir / rows[missing["id"]].path).unlink()
    code, out = await asyncio.to_thread(_verify, sqlite_url, recording_dir)
    assert code == 1, out
    status = {line.split()[1]: line.split()[0] for line in out.splitlines()
              if line.startswith(("ok", "ALTERED", "MISSING"))}
    assert status == {altered["id"]: "ALTERED", missing["id"]: "MISSING"}, out


async def test_retention_deletes_documents_with_the_recordings(
        client: Any, call: Any, recording_dir: Path) -> None:
    document = await _upload(client, call, licence_photo(), "image/jpeg")
    db = client.server.app[keys.DB]
    now = dt.datetime.now(dt.UTC)
    assert await purge_expired_documents(db, recording_dir, 30, now) == 0
    assert await purge_expired_documents(db, recording_dir, 30,
                                         now + dt.timedelta(days=31)) == 1
    assert files_under(recording_dir) == []
    [row] = await db.list_documents(call.session_id)
    assert row.id == document["id"] and row.deleted_at is not None
