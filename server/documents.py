"""Captured documents on disk: decoded and re-encoded, stored beside the recordings.

An upload is decoded by Pillow and written again from its pixels, so nothing of the
original file survives but the picture: EXIF (camera, GPS location), comments, ICC
profiles and any bytes a crafted file hides after the image are dropped. A body that is
not a whole JPEG or PNG is refused (`NotAnImage`). The still goes into the session's
folder of the recording tree (`{dir}/{YYYY}/{MM}/{DD}/{session_id}/doc-{id}.jpg`), so
it is kept and deleted with the recordings (`[recording] retention_days`); its SHA-256
is stored for `vwin recording verify`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import os
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image, ImageOps, UnidentifiedImageError

from recorder.manifest import validate_id
from server.recording.catalog import resolve
from server.storage.db import Database
from server.storage.documents import Document

CONTENT_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG"}
_SUFFIX = {"JPEG": ("jpeg", ".jpg"), "PNG": ("png", ".png")}
MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png"}
JPEG_QUALITY = 92  # a licence's small print stays readable


class NotAnImage(ValueError):
    """The body is not a complete JPEG or PNG within the limits; `str()` says why."""


@dataclass(frozen=True, slots=True)
class Still:
    data: bytes
    kind: str  # "jpeg" or "png"
    suffix: str
    width: int
    height: int


def reencode(body: bytes, max_pixels: int) -> Still:
    """Decode the image completely and encode its pixels again, without any metadata."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(body)) as source:
                if source.format not in _SUFFIX:
                    raise NotAnImage(f"a {source.format} image; send JPEG or PNG")
                width, height = source.size
                if width * height > max_pixels:
                    raise NotAnImage(f"{width}x{height} is more than {max_pixels} pixels")
                source.load()  # a truncated file fails here
                image = ImageOps.exif_transpose(source)  # keep it upright, drop the tag
                kind, suffix = _SUFFIX[source.format]
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise NotAnImage(f"not a JPEG or PNG image ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, NotAnImage):
            raise
        raise NotAnImage(f"the image is damaged or incomplete ({exc})") from None
    # Encoders read some metadata from `info` (PNG: the ICC profile): keep only what the
    # pixels need to mean the same (a palette's transparent entry).
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    out = io.BytesIO()
    if kind == "jpeg":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16"):
            image = image.convert("RGBA")
        image.save(out, "PNG", optimize=False)
    return Still(out.getvalue(), kind, suffix, image.width, image.height)


def session_folder(recording_paths: list[str], session_id: str, created: dt.datetime) -> str:
    """The session's folder of the recording tree (relative): its recordings' folder when
    it has any, else the date of its start, as a recorder would name it."""
    for path in recording_paths:
        parent = PurePosixPath(path).parent
        if parent.name == session_id:
            return str(parent)
    day = created.astimezone(dt.UTC)
    return f"{day:%Y}/{day:%m}/{day:%d}/{validate_id('session_id', session_id)}"


def write_still(directory: Path, relative: str, data: bytes) -> None:
    """Write atomically (temporary file, then rename): a crash leaves no half image."""
    path = resolve(directory, relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("xb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


async def store_still(db: Database, directory: Path, *, session_id: str,
                      session_created: dt.datetime, still: Still, added_by: str,
                      now: dt.datetime) -> Document:
    """Write the still beside the session's recordings and record it with its hash."""
    document_id = "doc_" + secrets.token_hex(8)
    recordings = [r.path for r in await db.list_recordings(session_id)]
    relative = f"{session_folder(recordings, session_id, session_created)}/" \
               f"{document_id}{still.suffix}"
    await asyncio.to_thread(write_still, directory, relative, still.data)
    document = Document(
        id=document_id, session_id=session_id, kind=still.kind, path=relative,
        sha256=hashlib.sha256(still.data).hexdigest(), size_bytes=len(still.data),
        width=still.width, height=still.height, added_by=added_by, created_at=now,
        deleted_at=None)
    try:
        await db.add_document(document)
    except BaseException:
        resolve(directory, relative).unlink(missing_ok=True)
        raise
    return document
