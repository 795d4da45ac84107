"""Materials guidance over HTTP: the checklist of a queue or action (`GET /api/materials`,
kiosks and staff), and the items a specialist ticked as shown in a session
(`POST /api/sessions/{id}/materials`, stored with the session)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from server import keys
from server.http.auth import fail, require
from server.http.params import body_of, query, takes_query
from server.http.parties import caller
from server.materials import MATERIALS, describe
from server.storage.db import Database
from server.storage.records import User
from signaling import limits as lim

MANAGER = "manager"
SPECIALIST = "specialist"
ItemId = Annotated[str, msgspec.Meta(pattern="^[a-z][a-z0-9_]{0,63}$")]


class MaterialsQuery(msgspec.Struct, forbid_unknown_fields=True):
    queue: lim.Slug | None = None
    action: lim.Slug | None = None


class TickBody(msgspec.Struct, forbid_unknown_fields=True):
    item: ItemId
    shown: bool = True


@takes_query(MaterialsQuery)
async def list_materials(request: web.Request) -> web.Response:
    """The queue's items, then the action's (each once), Chinese and English names."""
    await caller(request, MANAGER, SPECIALIST)
    q = query(request, MaterialsQuery)
    materials = request.app[MATERIALS]
    if q.queue is None and q.action is None:
        fail(web.HTTPBadRequest, "invalid_query", "name a queue or an action (or both)")
    if q.queue is not None and q.queue not in materials.known_queues:
        fail(web.HTTPNotFound, "unknown_queue", f"no queue {q.queue!r}")
    if q.action is not None and q.action not in materials.known_actions:
        fail(web.HTTPNotFound, "unknown_action", f"no action {q.action!r}")
    items = [describe(where, item) for where, item in materials.items_for(q.queue, q.action)]
    return reply({"queue": q.queue, "action": q.action, "items": items})


async def _specialist_of(db: Database, user: User, session_id: str) -> None:
    """404 for no such session, 403 for a specialist who did not take part in it."""
    if await db.session_brief(session_id) is None:
        fail(web.HTTPNotFound, "not_found", "no such session")
    if not await db.took_part(session_id, SPECIALIST, user.username):
        fail(web.HTTPForbidden, "not_a_participant", "you did not take part in this session")


async def tick_material(request: web.Request) -> web.Response:
    """A specialist of the session ticks (or unticks) an item as shown; durable at once."""
    user = await require(request, SPECIALIST)
    body = await body_of(request, TickBody)
    db = request.app[keys.DB]
    session_id = request.match_info["id"]
    await _specialist_of(db, user, session_id)
    if body.item not in request.app[MATERIALS].item_ids():
        fail(web.HTTPBadRequest, "unknown_item", f"no material item {body.item!r}")
    await db.tick_material(session_id, body.item, body.shown, user.username)
    return reply({"materials": await session_ticks(db, session_id)})


async def session_ticks(db: Database, session_id: str) -> list[dict[str, Any]]:
    """The ticks of `GET /api/sessions/{id}` (`materials`): item, shown, by whom, when."""
    names = {u.username: u.name for u in await db.list_users()}
    return [msgspec.to_builtins(t) | {"by_name": names.get(t.by, t.by)}
            for t in await db.list_ticks(session_id)]


def reply(data: Any) -> web.Response:
    return web.Response(body=msgspec.json.encode(data), content_type="application/json")


def setup_materials(app: web.Application) -> None:
    app.router.add_get("/api/materials", list_materials)
    app.router.add_post("/api/sessions/{id}/materials", tick_material)
