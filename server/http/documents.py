"""Captured documents over HTTP.

`POST /api/sessions/{id}/documents`: the session's terminal (device token) or one of its
specialists uploads a still while the call is connected; the body is the image itself
(`image/jpeg` or `image/png`, at most `[documents] max_bytes`: 413 beyond, read in
chunks, nothing written before the whole body is in and decoded). Every participant is
then told (`document.added`, through the switchboard's outbox).

`GET /api/documents/{id}`: the session's specialists during the call, managers (of the
session's units) after; every fetch is logged like the recordings' access.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import msgspec
from aiohttp import web

from server import keys
from server.documents import CONTENT_TYPES, MEDIA_TYPES, NotAnImage, reencode, store_still
from server.http.auth import fail, require
from server.http.materials import session_ticks
from server.http.parties import Caller, caller
from server.http.recordings import managed_session, private_file, stored_file
from server.recording.embedded import RECORDING
from server.storage.documents import Document, SessionBrief
from signaling import messages as m
from signaling.commit import commit
from signaling.documents import document_added
from signaling.identity import members_of
from signaling.model import Call, CallState

MANAGER = "manager"
SPECIALIST = "specialist"
CHUNK = 64 * 1024


def info(document: Document) -> m.DocumentInfo:
    return m.DocumentInfo(id=document.id, kind=document.kind, sha256=document.sha256,
                          width=document.width, height=document.height)


def describe(document: Document) -> dict[str, Any]:
    """A document as the API shows it; `url` serves the image while it is kept."""
    data: dict[str, Any] = msgspec.to_builtins(info(document))
    data.update(session_id=document.session_id, added_by=document.added_by,
                size_bytes=document.size_bytes, created_at=document.created_at.isoformat(),
                url=None if document.deleted_at else f"/api/documents/{document.id}")
    return data


async def session_documents(app: web.Application, session_id: str) -> dict[str, Any]:
    """What `GET /api/sessions/{id}` adds: `documents` and the `materials` ticked."""
    db = app[keys.DB]
    return {"documents": [describe(d) for d in await db.list_documents(session_id)],
            "materials": await session_ticks(db, session_id)}


async def _live_call(request: web.Request, session: SessionBrief, who: Caller) -> Call:
    """The session's call, connected, with `who` in it; 404/403/409 otherwise."""
    call = await request.app[keys.BOARD].services.router.get_call(session.call_id)
    if who.terminal is not None and session.terminal_id != who.terminal.id:
        fail(web.HTTPNotFound, "not_found", "no such session")  # another terminal's: unseen
    if call is None or call.state != CallState.CONNECTED:
        fail(web.HTTPConflict, "not_in_call", "the session's call is not connected")
    if who.principal not in members_of(call):
        fail(web.HTTPForbidden, "not_a_participant", "you are not in this session's call")
    return call


def _too_large(limit: int, size: int) -> web.HTTPRequestEntityTooLarge:
    text = msgspec.json.encode({"error": "too_large",
                                "message": f"a document is at most {limit} bytes"}).decode()
    return web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size, text=text,
                                         content_type="application/json")


async def _body(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is longer than `limit` (nothing kept)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit, request.content_length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, size)
        chunks.append(chunk)
    return b"".join(chunks)


async def add_document(request: web.Request) -> web.Response:
    """Store a still of the call (decoded, re-encoded without metadata) and announce it."""
    who = await caller(request, SPECIALIST)
    db = request.app[keys.DB]
    session = await db.session_brief(request.match_info["id"])
    if session is None:
        fail(web.HTTPNotFound, "not_found", "no such session")
    call = await _live_call(request, session, who)
    if request.content_type not in CONTENT_TYPES:
        fail(web.HTTPUnsupportedMediaType, "unsupported_media_type",
             "send the image itself as image/jpeg or image/png")
    settings = request.app[keys.SETTINGS].documents
    body = await _body(request, settings.max_bytes)
    try:
        still = await asyncio.to_thread(reencode, body, settings.max_pixels)
    except NotAnImage as exc:
        fail(web.HTTPUnsupportedMediaType, "not_an_image", str(exc))
    document = await store_still(
        db, request.app[RECORDING].directory, session_id=session.id,
        session_created=session.created_at, still=still, added_by=who.principal,
        now=dt.datetime.now(dt.UTC))
    services = request.app[keys.BOARD].services
    await commit(services, document_added(services, call, info(document)))
    return web.json_response({"document": describe(document)}, status=201)


async def _may_read(request: web.Request, document: Document) -> str:
    """The reader's username: a manager of the session's units, or a specialist in its
    call while it lasts; 404 for anyone else."""
    user = await require(request, MANAGER, SPECIALIST)
    db = request.app[keys.DB]
    if user.role == MANAGER:
        if await db.session_in_scope(document.session_id, await db.scope_of(user)):
            return user.username
    else:
        session = await db.session_brief(document.session_id)
        call = None if session is None else await request.app[keys.BOARD].services.router \
            .get_call(session.call_id)
        if (call is not None and call.state == CallState.CONNECTED
                and user.username in call.agents):
            return user.username
    fail(web.HTTPNotFound, "not_found", "no such document")


async def document_file(request: web.Request) -> web.StreamResponse:
    """`GET /api/documents/{id}`: the stored image; each fetch logged with who and when."""
    db = request.app[keys.DB]
    document = await db.get_document(request.match_info["id"])
    if document is None:
        await require(request, MANAGER, SPECIALIST)
        fail(web.HTTPNotFound, "not_found", "no such document")
    username = await _may_read(request, document)
    if document.deleted_at is not None:
        fail(web.HTTPGone, "deleted", "the document was deleted by the retention policy")
    path = stored_file(request, document.path, "document")
    await db.log_document_access(document.id, username, request.remote)
    return private_file(path, MEDIA_TYPES[document.kind])


async def document_access(request: web.Request) -> web.Response:
    """`GET /api/sessions/{id}/document-access`: who fetched the session's documents."""
    db = request.app[keys.DB]
    rows = await db.list_document_access(await managed_session(request))
    return web.json_response(text=msgspec.json.encode(
        {"access": [msgspec.to_builtins(r) for r in rows]}).decode())


def setup_documents(app: web.Application) -> None:
    app.router.add_post("/api/sessions/{id}/documents", add_document)
    app.router.add_get("/api/documents/{id}", document_file)
    app.router.add_get("/api/sessions/{id}/document-access", document_access)
