"""Accounts over HTTP, for managers: `/api/users...` (list, create, change, reset a password,
disable, enable, the audit trail), `/api/units` (the tree) and `POST /api/password`
(anyone's own password).

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
from server.accountwatch import end_connections
from server.auth import hash_password, token_hash
from server.http.api import body_of, reply
from server.http.auth import fail, request_token, require
from server.passwordpolicy import MAX_LENGTH, WeakPassword, check_password
from server.passwords import one_time_password
from server.storage.errors import AlreadyExists, InvalidRecord, UnknownUser
from server.storage.records import User
from server.storage.units import Scope

MANAGER = "manager"
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # letters, digits, `.`, `_`, `-`
Username = Annotated[str, msgspec.Meta(pattern=USERNAME_PATTERN, max_length=64)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Level = Annotated[int, msgspec.Meta(ge=1, le=9)]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_LENGTH)]


class NewUser(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: Username
    role: Literal["specialist", "manager"]
    name: Name
    department: Ref | None = None
    skills: dict[Ref, Level] = msgspec.field(default_factory=dict)
    unit_id: Ref | None = None


class UserChanges(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    department: Ref | msgspec.UnsetType | None = msgspec.UNSET
    skills: dict[Ref, Level] | msgspec.UnsetType = msgspec.UNSET
    unit_id: Ref | msgspec.UnsetType | None = msgspec.UNSET


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current_password: Secret
    new_password: Secret


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
    user = await request.app[keys.DB].get_user(request.match_info["username"])
    if user is None or not _sees(scope, user):
        fail(web.HTTPNotFound, "not_found", "no such account")
    return user


async def _check_refs(request: web.Request, scope: Scope, skills: dict[str, int] | None,
                      unit_id: str | None, role: str) -> None:
    """Skills name configured queues; the unit exists and lies in the manager's scope."""
    queues = {q.id for q in request.app[keys.SETTINGS].queues}
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
    await _check_refs(request, scope, body.skills, unit_id, body.role)
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
    await _check_refs(request, scope, changes.get("skills"),
                      changes.get("unit_id", target.unit_id), target.role)
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
    await end_connections(request.app, target.username, "password_changed")
    return reply({"username": target.username, "one_time_password": password})


async def _set_disabled(request: web.Request, disabled: bool) -> web.Response:
    manager, scope = await _manager(request)
    target = await _target(request, scope)
    if target.id == manager.id and disabled:
        fail(web.HTTPBadRequest, "self", "you cannot disable your own account")
    await request.app[keys.DB].set_disabled(target.id, disabled, actor=manager.username)
    if disabled:
        await end_connections(request.app, target.username, "disabled")
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


async def change_own_password(request: web.Request) -> web.Response:
    """Anyone's own password (the way out of a one-time password); other logins end."""
    user = await require(request, pending_ok=True)
    body = await body_of(request, PasswordChange)
    auth = request.app[keys.AUTH]
    if await auth.check_password(user.username, body.current_password) is None:
        fail(web.HTTPBadRequest, "wrong_password", "the current password is wrong")
    if body.new_password == body.current_password:
        fail(web.HTTPBadRequest, "same_password", "the new password must differ")
    try:
        check_password(body.new_password, user.username)
    except WeakPassword as exc:
        fail(web.HTTPBadRequest, exc.code, str(exc))
    token, _ = request_token(request)
    await request.app[keys.DB].change_password(
        user.id, hash_password(body.new_password), must_change=False, actor=user.username,
        keep_token=token_hash(token) if token else None)
    await end_connections(request.app, user.username, "password_changed")
    return reply({"status": "changed"})


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
    r.add_patch("/api/users/{username}", change_user)
    r.add_post("/api/users/{username}/reset-password", reset_password)
    r.add_post("/api/users/{username}/disable", disable_user)
    r.add_post("/api/users/{username}/enable", enable_user)
    r.add_post("/api/password", change_own_password)
    r.add_get("/api/units", unit_tree)
