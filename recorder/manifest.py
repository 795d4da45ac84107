"""Where a recording lives on disk and the manifest that describes it.

Layout: ``{dir}/{YYYY}/{MM}/{DD}/{session_id}/{participant_id}-{segment}.webm`` (UTC date
of the segment's start), with ``{participant_id}-{segment}.json`` beside it. The date
prefix lets a retention job delete whole days; the session folder keeps both parties and
every segment of one consultation together.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_HASH_CHUNK = 1 << 20


def validate_id(name: str, value: str) -> str:
    """Ids become path components: refuse anything that could leave the directory."""
    if not isinstance(value, str) or not _ID.match(value) or ".." in value:
        raise ValueError(f"invalid {name} {value!r}: use letters, digits, '_', '-', '.'")
    return value


def recording_path(
    directory: Path, session_id: str, participant_id: str, segment: int, started: float
) -> Path:
    """Path of one segment; ``started`` is Unix seconds."""
    if segment < 1:
        raise ValueError(f"segment must be >= 1, got {segment}")
    day = datetime.fromtimestamp(started, UTC)
    folder = directory / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
    folder = folder / validate_id("session_id", session_id)
    return folder / f"{validate_id('participant_id', participant_id)}-{segment}.webm"


def iso_utc(unix_seconds: float | None) -> str | None:
    if unix_seconds is None:
        return None
    return datetime.fromtimestamp(unix_seconds, UTC).isoformat(timespec="milliseconds")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write the JSON sidecar atomically (temp file + rename) so it is never half written."""
    temporary = path.with_suffix(".json.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=2, sort_keys=True)
        stream.flush()
        os.fsync(stream.fileno())
    temporary.replace(path)
