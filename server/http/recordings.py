"""Recordings over HTTP, for managers: the list of a session's segments, the files
(with range requests, every access logged with who and when) and the live recorders."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from server import keys
from server.http.auth import fail, require
from server.recording.catalog import resolve
from server.recording.embedded import RECORDING
from server.storage.recordings import DELETED, Recording

MANAGER = "manager"

_RANGE = re.compile(r"bytes=[0-9, -]{1,100}")  # what the access log keeps of `Range`


def describe(recording: Recording) -> dict[str, Any]:
    """A segment as the API shows it; `url` streams the file while it is kept."""
    data: dict[str, Any] = msgspec.to_builtins(recording)
    data["started_at_unix"] = (recording.started_at.timestamp()
                               if recording.started_at is not None else None)
    data["url"] = None if recording.state == DELETED else f"/api/recordings/{recording.id}"
    return data


def stored_file(request: web.Request, relative: str, what: str) -> Path:
    """A recording's or document's file under the recordings directory; 404 when absent."""
    try:
        path = resolve(request.app[RECORDING].directory, relative)
    except ValueError:
        fail(web.HTTPNotFound, "not_found", f"the {what} file is not on this server")
    if not path.is_file():
        fail(web.HTTPNotFound, "missing", f"the {what} file is missing")
    return path


def private_file(path: Path, content_type: str) -> web.FileResponse:
    """A stored file nobody between the server and the reader may cache."""
    return web.FileResponse(path, headers={"Content-Type": content_type,
                                           "Cache-Control": "private, no-store"})


async def managed_session(request: web.Request) -> str:
    """The `{id}` session of an access-log route, when it is in the manager's units."""
    user = await require(request, MANAGER)
    db = request.app[keys.DB]
    if not await db.session_in_scope(request.match_info["id"], await db.scope_of(user)):
        fail(web.HTTPNotFound, "not_found", "no such session")
    return request.match_info["id"]


async def session_recordings(app: web.Application, session_id: str) -> list[dict[str, Any]]:
    """The `recordings` of `GET /api/sessions/{id}`."""
    return [describe(r) for r in await app[keys.DB].list_recordings(session_id)]


async def recording_file(request: web.Request) -> web.StreamResponse:
    """`GET /api/recordings/{id}`: the WebM file; aiohttp answers `Range` with 206."""
    user = await require(request, MANAGER)
    db = request.app[keys.DB]
    recording = await db.get_recording(request.match_info["id"])
    if recording is None or not await db.session_in_scope(recording.session_id,
                                                          await db.scope_of(user)):
        fail(web.HTTPNotFound, "not_found", "no such recording")
    if recording.state == DELETED:
        fail(web.HTTPGone, "deleted", "the recording was deleted by the retention policy")
    path = stored_file(request, recording.path, "recording")
    asked = request.headers.get("Range")
    await db.log_access(recording.id, user.username, request.remote,
                        asked if asked and _RANGE.fullmatch(asked) else None)
    return private_file(path, "video/webm")


async def recording_access(request: web.Request) -> web.Response:
    """`GET /api/sessions/{id}/recording-access`: who fetched the session's recordings."""
    db = request.app[keys.DB]
    rows = await db.list_access(await managed_session(request))
    names = {u.id: u.name for u in await db.list_users()}
    access = [msgspec.to_builtins(r) | {"name": names.get(r.username, r.username)} for r in rows]
    return web.json_response(text=msgspec.json.encode({"access": access}).decode())


async def live_recorders(request: web.Request) -> web.Response:
    """`GET /api/recorders`: the recorders connected now, their capacity and sessions."""
    await require(request, MANAGER)
    setup = request.app[RECORDING].setup
    loads = [] if setup is None else await setup.pool.recorders()
    return web.json_response({
        "enabled": setup is not None,
        "required": setup.required if setup else False,
        "recorders": [{"name": r.name, "capacity": r.capacity, "sessions": len(r.calls),
                       "calls": list(r.calls)} for r in loads],
    })


def setup_recordings(app: web.Application) -> None:
    app.router.add_get("/api/recordings/{id}", recording_file)
    app.router.add_get("/api/sessions/{id}/recording-access", recording_access)
    app.router.add_get("/api/recorders", live_recorders)
