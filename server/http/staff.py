"""Accounts over HTTP, for managers: `/api/users...` (list, create, change, reset a password,
disable, enable, the audit trail) and `/api/units` (the tree). One's own password is
`POST /api/password` (server/http/api.py).

A manager with a unit below the city sees and changes only the accounts of their unit's
subtree (others are 404) and may give only units of it. A reset password is a one-time
password, shown once in the answer, to be changed at the next login; a reset or a disable
ends the person's logins and live connections at once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from server import keys
from server.auth import hash_password
from server.config import ConfigError
from server.http.api import reply
from server.http.auth import fail, require
from server.http.params import body_of
from server.passwords import one_time_password
from server.revocation import DISABLED, PASSWORD_CHANGED, end_identity
from server.storage.errors import AlreadyExists, InvalidRecord, UnknownUser
from server.storage.records import User
from server.storage.units import Scope
from signaling import limits as lim

MANAGER = "manager"
Level = Annotated[int, msgspec.Meta(ge=1, le=9)]


class NewUser(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: lim.Slug
    role: Literal["specialist", "manager"]
    name: lim.Name
    department: lim.Slug | None = None
    skills: dict[lim.Slug, Level] = msgspec.field(default_factory=dict)
    unit_id: lim.Slug | None = None


class UserChanges(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: lim.Name | msgspec.UnsetType = msgspec.UNSET
    department: lim.Slug | msgspec.UnsetType | None = msgspec.UNSET
    skills: dict[lim.Slug, Level] | msgspec.UnsetType = msgspec.UNSET
    unit_id: lim.Slug | msgspec.UnsetType | None = msgspec.UNSET


def describe(user: User, unit_names: dict[str, str]) -> dict[str, Any]:
    """An account as the Staff page shows it (never a hash)."""
    return {"username": user.username, "name": user.name, "role": user.role,
            "department": user.department, "skills": user.skills, "unit_id": user.unit_id,
            "unit_name": unit_names.get(user.unit_id or ""), "disabled": user.disabled,
            "must_change_password": user.must_change_password, "created_at": user.created_at}


def _sees(scope: Scope, user: User) -> bool:
    return scope.units is None or user.unit_id in scope.units


async def _manager(request: web.Request) -> tuple[User, Scope]:
    manager = await require(request, MANAGER)
    return manager, await request.app[keys.DB].scope_of(manager)


async def _target(request: web.Request, scope: Scope) -> User:
    user = await request.app[keys.DB].get_user(request.match_info["id"])
    if user is None or not _sees(scope, user):
        fail(web.HTTPNotFound, "not_found", "no such account")
    return user


async def _check_refs(request: web.Request, scope: Scope, skills: dict[str, int] | None,
                      unit_id: str | None, role: str, department: str | None) -> None:
    """Skills name configured queues, the department a configured one; the unit exists and
    lies in the manager's scope."""
    settings = request.app[keys.SETTINGS]
    if department:
        try:
            settings.department(department)
        except ConfigError as exc:
            fail(web.HTTPBadRequest, "unknown_department", str(exc))
    queues = {q.id for q in settings.queues}
    if skills and set(skills) - queues:
        unknown = sorted(set(skills) - queues)
        fail(web.HTTPBadRequest, "unknown_queue", f"unknown queue(s) {unknown}")
    if unit_id is not None and await request.app[keys.DB].get_unit(unit_id) is None:
        fail(web.HTTPBadRequest, "unknown_unit", f"no unit {unit_id!r}")
    if scope.units is not None and (unit_id is None or unit_id not in scope.units):
        fail(web.HTTPForbidden, "outside_unit", f"a {role} must be in a unit of yours")


async def _unit_names(request: web.Request) -> dict[str, str]:
    return {u.id: u.name for u in await request.app[keys.DB].list_units()}


async def list_users(request: web.Request) -> web.Response:
    _, scope = await _manager(request)
    names = await _unit_names(request)
    users = [u for u in await request.app[keys.DB].list_users() if _sees(scope, u)]
    return reply({"users": [describe(u, names) for u in users]})


async def add_user(request: web.Request) -> web.Response:
    """Create an account with a one-time password, returned once."""
    manager, scope = await _manager(request)
    body = await body_of(request, NewUser)
    unit_id = body.unit_id if body.unit_id is not None or scope.everything else scope.root
    await _check_refs(request, scope, body.skills, unit_id, body.role, body.department)
    password = one_time_password(body.username)
    try:
        user = await request.app[keys.DB].add_user(
            body.username, body.role, hash_password(password), body.name, body.department,
            body.skills, unit_id=unit_id, must_change_password=True, actor=manager.username)
    except AlreadyExists as exc:
        fail(web.HTTPConflict, "exists", str(exc))
    except InvalidRecord as exc:
        fail(web.HTTPBadRequest, "invalid_body", str(exc))
    return reply({"user": describe(user, await _unit_names(request)),
                  "one_time_password": password}, status=201)


async def change_user(request: web.Request) -> web.Response:
    manager, scope = await _manager(request)
    target = await _target(request, scope)
    body = await body_of(request, UserChanges)
    changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
    await _check_refs(request, scope, changes.get("skills"), changes.get("unit_id", target.unit_id),
                      target.role, changes.get("department"))
    try:
        user = await request.app[keys.DB].update_user(target.id, changes, actor=manager.username)
    except (UnknownUser, InvalidRecord) as exc:
        fail(web.HTTPBadRequest, "invalid_body", str(exc))
    return reply({"user": describe(user, await _unit_names(request))})


async def reset_password(request: web.Request) -> web.Response:
    """A one-time password for someone who lost theirs; their logins end now."""
    manager, scope = await _manager(request)
    target = await _target(request, scope)
    password = one_time_password(target.username)
    await request.app[keys.DB].change_password(
        target.id, hash_password(password), must_change=True, actor=manager.username,
        action="password_reset")
    await end_identity(request.app, target.username, PASSWORD_CHANGED)
    return reply({"username": target.username, "one_time_password": password})


async def _set_disabled(request: web.Request, disabled: bool) -> web.Response:
    manager, scope = await _manager(request)
    target = await _target(request, scope)
    if target.id == manager.id and disabled:
        fail(web.HTTPBadRequest, "self", "you cannot disable your own account")
    await request.app[keys.DB].set_disabled(target.id, disabled, actor=manager.username)
    if disabled:
        await end_identity(request.app, target.username, DISABLED)
    user = await request.app[keys.DB].get_user(target.id)
    assert user is not None
    return reply({"user": describe(user, await _unit_names(request))})


async def disable_user(request: web.Request) -> web.Response:
    return await _set_disabled(request, True)


async def enable_user(request: web.Request) -> web.Response:
    return await _set_disabled(request, False)


async def audit_trail(request: web.Request) -> web.Response:
    """The newest account changes (of the accounts this manager sees)."""
    _, scope = await _manager(request)
    db = request.app[keys.DB]
    seen = {u.id for u in await db.list_users() if _sees(scope, u)}
    changes = [c for c in await db.account_changes() if c.username in seen]
    people = {u.id: u.name for u in await db.list_users()}
    return reply({"changes": [msgspec.to_builtins(c) | {
        "actor_name": people.get(c.actor, c.actor), "name": people.get(c.username)}
        for c in changes]})


async def unit_tree(request: web.Request) -> web.Response:
    """`GET /api/units`: the units this manager sees, nested by parent."""
    _, scope = await _manager(request)
    units = [u for u in await request.app[keys.DB].list_units()
             if scope.units is None or u.id in scope.units]
    nodes: dict[str, dict[str, Any]] = {
        u.id: {"id": u.id, "name": u.name, "level": u.level, "parent_id": u.parent_id,
               "children": []} for u in units}
    roots: list[dict[str, Any]] = []
    for unit in units:
        parent = nodes.get(unit.parent_id or "")
        (roots if parent is None else parent["children"]).append(nodes[unit.id])
    return reply({"units": roots})


def setup_staff(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/users", list_users)
    r.add_post("/api/users", add_user)
    r.add_get("/api/users/audit", audit_trail)
    r.add_patch("/api/users/{id}", change_user)
    r.add_post("/api/users/{id}/reset-password", reset_password)
    r.add_post("/api/users/{id}/disable", disable_user)
    r.add_post("/api/users/{id}/enable", enable_user)
    r.add_get("/api/units", unit_tree)
