"""HTTP for joint actions (completed later, outside the session) and pending matters.

A specialist acts for their own department only: signs its steps, sees and
moves its matters. Managers see everything. Domain refusals become JSON errors
here, at the edge, with the same codes as the protocol's `error`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from server import keys
from server.http.api import reply
from server.http.auth import fail, require
from server.http.params import Day, Limit, body_of, query, takes_query
from server.http.reports import setup_reports
from server.http.timespan import parse_when
from server.joint import JOINT, JointServices, MatterDesk
from server.storage.db import Database
from server.storage.matters import Matter
from server.storage.records import User
from server.storage.units import ALL
from signaling import limits as lim
from signaling.commit import commit
from signaling.errors import Refused
from signaling.identity import principal_of
from signaling.joint_actions import JointWork, StoredAction, updated_message
from signaling.matters import STATES
from signaling.outbox import Outbox

MANAGER = "manager"
SPECIALIST = "specialist"

_STATUS: dict[str, type[web.HTTPException]] = {
    "not_found": web.HTTPNotFound,
    "forbidden": web.HTTPForbidden,
    "wrong_department": web.HTTPForbidden,
    "no_department": web.HTTPForbidden,
    "not_a_participant": web.HTTPForbidden,
    "not_open": web.HTTPConflict,
    "already_signed": web.HTTPConflict,
    "invalid_transition": web.HTTPConflict,
}


def refusal(exc: Refused) -> web.HTTPException:
    """The HTTP error for a domain refusal: 404, 403, 409, or 400 for bad input."""
    status = _STATUS.get(exc.code, web.HTTPBadRequest)
    text = msgspec.json.encode({"error": exc.code, "message": exc.message}).decode()
    return status(text=text, content_type="application/json")


class SignBody(msgspec.Struct, forbid_unknown_fields=True):
    step: lim.Id


class RejectBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: lim.Text


class EnterpriseBody(msgspec.Struct, forbid_unknown_fields=True):
    name: lim.Name
    uscc: lim.Uscc | None = None


class MatterBody(msgspec.Struct, forbid_unknown_fields=True, rename={"klass": "class"}):
    enterprise: EnterpriseBody
    description: lim.Description
    klass: Literal["simple", "general", "complex"]
    department: lim.Slug | None = None
    session_id: lim.Id | None = None


class MatterPatch(msgspec.Struct, forbid_unknown_fields=True):
    state: Annotated[str, msgspec.Meta(pattern="^[a-z_]{1,32}$")]
    note: lim.OptionalText | None = None


class ActionQuery(msgspec.Struct, forbid_unknown_fields=True):
    action: lim.Slug | None = None
    state: Literal["open", "completed", "rejected"] | None = None
    start: Day | None = msgspec.field(default=None, name="from")
    end: Day | None = msgspec.field(default=None, name="to")
    limit: Limit = 500


class MatterQuery(msgspec.Struct, forbid_unknown_fields=True):
    department: lim.Slug | None = None
    state: Annotated[str, msgspec.Meta(pattern="^[a-z_]{1,32}$")] | None = None
    overdue: bool | None = None
    start: Day | None = msgspec.field(default=None, name="from")
    end: Day | None = msgspec.field(default=None, name="to")
    limit: Limit = 500


def _joint(request: web.Request) -> JointServices:
    return request.app[JOINT]


async def people(db: Database) -> dict[str, str]:
    """username -> the person's name (`--name`), for showing who signed or opened what."""
    return {u.id: u.name for u in await db.list_users()}


def action_json(stored: StoredAction, work: JointWork,
                names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An action for the API: the `action.updated` fields plus names and times."""
    data: dict[str, Any] = msgspec.to_builtins(updated_message(stored))
    data.pop("type", None)
    record = stored.record
    action_type = work.types.get(record.action)
    data["name_en"] = action_type.name_en if action_type else record.action
    data["name_zh"] = action_type.name_zh if action_type else record.action
    data["started_at"] = record.started_at.isoformat()
    data["closed_at"] = record.closed_at.isoformat() if record.closed_at else None
    for step in data.get("steps", []):
        step["signed_by_name"] = (names or {}).get(step.get("signed_by") or "")
    return data


def matter_json(matter: Matter, desk: MatterDesk,
                names: Mapping[str, str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(matter)
    data["class"] = data.pop("matter_class")
    for who in ("opened_by", "resolved_by"):
        data[f"{who}_name"] = (names or {}).get(data.get(who) or "")
    data["overdue"] = desk.is_overdue(matter)
    return data


async def action_types(request: web.Request) -> web.Response:
    await require(request)
    types = _joint(request).work.types
    return reply({"types": [msgspec.to_builtins(t) for t in types.values()]})


@takes_query(ActionQuery)
async def list_actions(request: web.Request) -> web.Response:
    """Managers see every action; a specialist, those their department signs."""
    user = await require(request, MANAGER, SPECIALIST)
    q = query(request, ActionQuery)
    tz = request.app[keys.SETTINGS].server.timezone
    department = None
    if user.role == SPECIALIST:
        department = user.department or "\0"  # no department: nothing to see
    work = _joint(request).work
    db = request.app[keys.DB]
    rows = await db.list_actions(
        scope=await db.scope_of(user) if user.role == MANAGER else ALL,
        action=q.action, state=q.state,
        start=parse_when(q.start, tz, end=False), end=parse_when(q.end, tz, end=True),
        department=department, limit=q.limit,
    )
    names = await people(db)
    return reply({"actions": [action_json(r, work, names) for r in rows]})


async def _may_see(db: Database, user: User, stored: StoredAction) -> bool:
    """A manager, when the action's session is in their units; a specialist, when their
    department signs a step."""
    if user.role == MANAGER:
        return await db.session_in_scope(stored.session_id, await db.scope_of(user))
    return any(s.department == user.department for s in stored.record.steps)


async def _manager_sees_matter(request: web.Request, user: User, matter_id: str) -> None:
    """404 for a manager when the matter's session lies outside their units."""
    if user.role != MANAGER:
        return
    db = request.app[keys.DB]
    scope = await db.scope_of(user)
    if scope.everything:
        return
    found = await db.get_matter(matter_id)
    if found is None or not await db.session_in_scope(found[0].session_id, scope):
        fail(web.HTTPNotFound, "not_found", "no such matter")


async def get_action(request: web.Request) -> web.Response:
    user = await require(request, MANAGER, SPECIALIST)
    db = request.app[keys.DB]
    stored = await db.get_action(request.match_info["id"])
    if stored is None or not await _may_see(db, user, stored):
        fail(web.HTTPNotFound, "not_found", "no such action")
    audit = [msgspec.to_builtins(e) async for e in db.audit_entries(stored.record.id)]
    return reply({"action": action_json(stored, _joint(request).work, await people(db)),
                  "audit": audit})


async def sign_action(request: web.Request) -> web.Response:
    user = await require(request, SPECIALIST)
    body = await body_of(request, SignBody)
    work = _joint(request).work
    return await _decided(request, work, work.sign(
        user.id, user.department, request.match_info["id"], body.step))


async def reject_action(request: web.Request) -> web.Response:
    user = await require(request, SPECIALIST)
    body = await body_of(request, RejectBody)
    work = _joint(request).work
    return await _decided(request, work, work.reject(
        user.id, user.department, request.match_info["id"], body.reason))


async def _decided(request: web.Request, work: JointWork,
                   decision: Awaitable[tuple[StoredAction, Outbox]]) -> web.Response:
    """A signature or rejection: refusals at the edge, its outbox committed, the action."""
    try:
        stored, out = await decision
    except Refused as exc:
        raise refusal(exc) from None
    await commit(request.app[keys.BOARD].services, out)
    return reply({"action": action_json(stored, work, await people(request.app[keys.DB]))})


async def open_matter(request: web.Request) -> web.Response:
    """From a session (`session_id`) or standalone; the owner defaults to one's department.

    A specialist opens matters for their own department only, from sessions they took
    part in; a manager for any department and session."""
    user = await require(request, MANAGER, SPECIALIST)
    body = await body_of(request, MatterBody)
    db = request.app[keys.DB]
    if user.role == MANAGER and body.session_id and not await db.session_in_scope(
            body.session_id, await db.scope_of(user)):
        fail(web.HTTPNotFound, "not_found", "no such session")
    department = (body.department or user.department or "").strip()
    if not department:
        fail(web.HTTPBadRequest, "invalid_body", "say which department owns the matter")
    participant = None
    if user.role == SPECIALIST:
        if department != user.department:
            fail(web.HTTPForbidden, "wrong_department",
                 f"you open matters for {user.department} only")
        participant = principal_of(SPECIALIST, user.username)
    desk = _joint(request).desk
    try:
        matter = await desk.open(
            actor=user.id, enterprise_name=body.enterprise.name,
            enterprise_uscc=body.enterprise.uscc, description=body.description,
            klass=body.klass, department=department, session_id=body.session_id,
            participant=participant,
        )
    except Refused as exc:
        raise refusal(exc) from None
    return reply({"matter": matter_json(matter, desk, await people(request.app[keys.DB]))},
                 status=201)


def _own_department(user: User, asked: str | None) -> str | None:
    """The department a user may list: managers any (or all), specialists their own."""
    if user.role == MANAGER:
        return asked or None
    if not user.department:
        fail(web.HTTPForbidden, "no_department", "your account has no department")
    if asked and asked != user.department:
        fail(web.HTTPForbidden, "forbidden", f"you see only {user.department}'s matters")
    return user.department


@takes_query(MatterQuery)
async def list_matters(request: web.Request) -> web.Response:
    user = await require(request, MANAGER, SPECIALIST)
    q = query(request, MatterQuery)
    if q.state is not None and q.state not in STATES:
        fail(web.HTTPBadRequest, "invalid_query", f"state must be one of {STATES}")
    desk = _joint(request).desk
    tz = request.app[keys.SETTINGS].server.timezone
    db = request.app[keys.DB]
    scope = await db.scope_of(user) if user.role == MANAGER else ALL
    rows = await db.list_matters(
        scope=scope,
        department=_own_department(user, q.department), state=q.state,
        overdue_on=desk.today() if q.overdue else None,
        start=parse_when(q.start, tz, end=False), end=parse_when(q.end, tz, end=True),
        limit=q.limit,
    )
    if q.overdue is False:
        rows = [r for r in rows if not desk.is_overdue(r)]
    names = await people(db)
    body: dict[str, Any] = {"matters": [matter_json(r, desk, names) for r in rows],
                            "today": desk.today().isoformat()}
    if user.role == MANAGER:
        body["departments"] = msgspec.to_builtins(
            await db.matters_by_department(desk.today(), scope))
    return reply(body)


async def get_matter(request: web.Request) -> web.Response:
    user = await require(request, MANAGER, SPECIALIST)
    await _manager_sees_matter(request, user, request.match_info["id"])
    desk = _joint(request).desk
    found = await desk.get(request.match_info["id"])
    if found is None or (user.role == SPECIALIST and found[0].department != user.department):
        fail(web.HTTPNotFound, "not_found", "no such matter")
    matter, history = found
    return reply({"matter": matter_json(matter, desk, await people(request.app[keys.DB])),
                  "history": msgspec.to_builtins(history)})


async def patch_matter(request: web.Request) -> web.Response:
    user = await require(request, MANAGER, SPECIALIST)
    await _manager_sees_matter(request, user, request.match_info["id"])
    body = await body_of(request, MatterPatch)
    desk = _joint(request).desk
    department = None if user.role == MANAGER else (user.department or "\0")
    try:
        matter = await desk.change(request.match_info["id"], body.state, body.note, user.id,
                                   department)
    except Refused as exc:
        raise refusal(exc) from None
    if matter is None:
        fail(web.HTTPNotFound, "not_found", "no such matter")
    return reply({"matter": matter_json(matter, desk, await people(request.app[keys.DB]))})


def setup_joint(app: web.Application) -> None:
    """Routes; the services (`JOINT`) are built with the switchboard (`server.app`)."""
    r = app.router
    r.add_get("/api/action-types", action_types)
    r.add_get("/api/actions", list_actions)
    r.add_get("/api/actions/{id}", get_action)
    r.add_post("/api/actions/{id}/sign", sign_action)
    r.add_post("/api/actions/{id}/reject", reject_action)
    r.add_post("/api/matters", open_matter)
    r.add_get("/api/matters", list_matters)
    r.add_get("/api/matters/{id}", get_matter)
    r.add_patch("/api/matters/{id}", patch_matter)
    setup_reports(app)
