"""`vwin audit verify`'s second half: every signed form's PDF re-hashed against the chain.

The audit entry `form_signed` holds the file's path (under `[recording] dir`) and its
SHA-256; a file missing, changed by one byte, or named outside the directory is a
problem named by form and path.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from recorder.manifest import sha256_file
from server.forms.press import SIGNED
from server.recording.catalog import resolve
from server.storage.auditlog import AuditLog


def _check(directory: Path, form_id: str, relative: str, expected: str) -> str | None:
    try:
        path = resolve(directory, relative)
    except ValueError as exc:
        return f"form {form_id}: {exc}"
    if not path.is_file():
        return f"form {form_id}: signed PDF {path} is MISSING"
    actual = sha256_file(path)
    if actual != expected:
        return (f"form {form_id}: signed PDF {path} was ALTERED "
                f"(SHA-256 {actual}, the audit log says {expected})")
    return None


async def verify_form_files(db: AuditLog, directory: Path) -> tuple[int, list[str]]:
    """(signed forms checked, one line per altered or missing file)."""
    checked = 0
    problems: list[str] = []
    async for entry in db.audit_entries():
        if entry.event != SIGNED:
            continue
        checked += 1
        form_id = str(entry.data.get("form_id", "?"))
        problem = await asyncio.to_thread(_check, directory, form_id,
                                          str(entry.data.get("path", "")),
                                          str(entry.data.get("sha256", "")))
        if problem is not None:
            problems.append(problem)
    return checked, problems
