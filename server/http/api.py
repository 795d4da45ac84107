"""The JSON HTTP API: login, queue figures, the session log, sites and terminals."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from aiohttp import web

from server import keys
from server.auth import Throttled, new_terminal_token, token_hash
from server.http.answers import LoginReply, Me, NewTerminal, Revoked, Site, Sites, Status, Ticket
from server.http.auth import (
    clear_login_cookies,
    fail,
    origin_allowed,
    request_token,
    require,
    safe_next,
    set_login_cookies,
)
from server.http.documents import session_documents
from server.http.export import stream_sessions_csv
from server.http.health import healthz
from server.http.metrics import metrics
from server.http.params import Day, Limit, body_of, query, takes_query
from server.http.recordings import session_recordings
from server.http.timespan import parse_when
from server.passwordpolicy import WeakPassword, check_password
from server.revocation import LOGGED_OUT, PASSWORD_CHANGED, end_identity
from server.storage.errors import AlreadyExists, BadCursor, NotFound, UnknownSite
from server.storage.records import SiteKind
from server.storage.units import ALL, Scope
from signaling import limits as lim

MANAGER = "manager"
_encoder = msgspec.json.Encoder()


def reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status, content_type="application/json")


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=lim.SLUG_MAX)]
    password: lim.Password
    next: Annotated[str, msgspec.Meta(max_length=2048)] | None = None


class SiteBody(msgspec.Struct, forbid_unknown_fields=True):
    id: lim.Slug
    name: lim.Name
    kind: SiteKind
    unit_id: lim.Slug | None = None


class TerminalBody(msgspec.Struct, forbid_unknown_fields=True):
    id: lim.Slug
    site: lim.Slug
    name: lim.OptionalName = ""


class SessionQuery(msgspec.Struct, forbid_unknown_fields=True):
    """Filters of the session list and its CSV export; dates are local days or instants."""

    start: Day | None = msgspec.field(default=None, name="from")
    end: Day | None = msgspec.field(default=None, name="to")
    queue: lim.Slug | None = None
    site: lim.Slug | None = None
    terminal: lim.Slug | None = None
    specialist: lim.Slug | None = None
    outcome: Literal["resolved", "follow_up", "referred"] | None = None
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    state: Annotated[str, msgspec.Meta(pattern="^[a-z_]{1,32}$")] | None = None
    limit: Limit | None = None
    cursor: Annotated[str, msgspec.Meta(max_length=lim.CURSOR_MAX)] | None = None


async def login(request: web.Request) -> web.Response:
    """JSON only and from an allowed Origin: a form on another site cannot log a browser in."""
    if request.content_type != "application/json":
        fail(web.HTTPUnsupportedMediaType, "unsupported_media_type",
             "send the credentials as application/json")
    if not origin_allowed(request):
        fail(web.HTTPForbidden, "origin", "logins from this origin are not allowed")
    body = await body_of(request, LoginBody)
    settings = request.app[keys.SETTINGS].auth
    try:
        result = await request.app[keys.AUTH].login(
            body.username, body.password, request.remote or "?"
        )
    except Throttled as exc:
        return _throttled(exc)
    if result is None:
        fail(web.HTTPUnauthorized, "unauthorized", "wrong username or password")
    response = reply(LoginReply(token=result.token, role=result.role,
                                expires_at=result.expires_at,
                                next="/password" if result.user.must_change_password
                                else safe_next(body.next, result.role),
                                must_change_password=result.user.must_change_password))
    set_login_cookies(response, result.token, settings.token_ttl_s,
                      settings.secure_cookies or request.secure)
    return response


class PasswordBody(msgspec.Struct, forbid_unknown_fields=True):
    current: lim.Password
    new: lim.Password  # the password policy (server/passwordpolicy.py) says what is enough


def _throttled(exc: Throttled) -> web.Response:
    response = reply({"error": "throttled", "message": str(exc)}, status=429)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def logout(request: web.Request) -> web.Response:
    """End this login and close the user's live sockets (on every node)."""
    token, _ = request_token(request)
    user = await require(request, pending_ok=True)
    if token:
        await request.app[keys.AUTH].logout(token)
    await end_identity(request.app, user.username, LOGGED_OUT)
    response = reply(Status(status="logged_out"))
    clear_login_cookies(response)
    return response


async def change_password(request: web.Request) -> web.Response:
    """`POST /api/password`: every login of the user ends, their sockets close (4413). The
    new password must pass the policy; it replaces a one-time password too."""
    user = await require(request, pending_ok=True)
    body = await body_of(request, PasswordBody)
    try:
        check_password(body.new, user.username)
    except WeakPassword as exc:
        fail(web.HTTPBadRequest, exc.code, str(exc))
    if body.new == body.current:
        fail(web.HTTPBadRequest, "same_password", "the new password must differ")
    try:
        changed = await request.app[keys.AUTH].change_password(
            user, body.current, body.new, request.remote or "?")
    except Throttled as exc:
        return _throttled(exc)
    if not changed:
        fail(web.HTTPForbidden, "wrong_password", "the current password is wrong")
    await end_identity(request.app, user.username, PASSWORD_CHANGED)
    response = reply(Status(status="password_changed"))
    clear_login_cookies(response)
    return response


async def me(request: web.Request) -> web.Response:
    user = await require(request, pending_ok=True)
    return reply(Me(username=user.username, role=user.role, name=user.name,
                    unit_id=user.unit_id, must_change_password=user.must_change_password,
                    department=user.department, skills=dict(user.skills)))


async def ws_ticket(request: web.Request) -> web.Response:
    user = await require(request, "specialist")
    return reply(Ticket(ticket=await request.app[keys.AUTH].issue_ticket(user)))


def _local_midnight(tz: str, now: dt.datetime) -> dt.datetime:
    local = now.astimezone(ZoneInfo(tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)


async def queue_figures(app: web.Application, scope: Scope = ALL) -> dict[str, Any]:
    """Live routing figures joined with today's figures from the log (of the sites `scope`
    sees; waiting calls and specialists are the queue's, shared by every site)."""
    services = app[keys.BOARD].services
    settings = app[keys.SETTINGS]
    now = services.utcnow()
    since = _local_midnight(settings.server.timezone, now)
    targets = {q.id: q.target_answer_s for q in settings.queues}
    figures = await app[keys.DB].queue_figures(since, targets, scope=scope)
    status = {item.id: item for item in (await services.status.status_message()).queues}
    out = []
    for q in settings.queues:
        snap = await services.router.snapshot(q.id, services.clock())
        fig = figures.get(q.id)
        out.append(
            {
                "id": q.id,
                "name": q.name,
                "name_en": q.name_en,
                "waiting": snap.waiting,
                "longest_wait_s": round(snap.longest_wait_s, 1),
                "estimated_wait_s": status[q.id].estimated_wait_s if q.id in status else None,
                "agents": {
                    "available": snap.available,
                    "busy": snap.busy,
                    "away": snap.away,
                    "logged_in": snap.logged_in,
                },
                "agents_available": snap.available,
                "agents_busy": snap.busy,
                "agents_logged_in": snap.logged_in,
                "offered": fig.offered if fig else 0,
                "answered": fig.answered if fig else 0,
                "abandoned": fig.abandoned if fig else 0,
                "avg_wait_s": fig.avg_wait_s if fig else None,
                "service_level": fig.service_level if fig else None,
                "target_answer_s": q.target_answer_s,
            }
        )
    hourly = await app[keys.DB].hourly_waits(since, settings.server.timezone, scope)
    return {"queues": out, "hourly": hourly, "as_of": now}


async def manager_scope(request: web.Request) -> Scope:
    """The signed-in manager's scope: the sites of their unit's subtree."""
    manager = await require(request, MANAGER)
    return await request.app[keys.DB].scope_of(manager)


async def queues(request: web.Request) -> web.Response:
    scope = await manager_scope(request)
    return reply(await queue_figures(request.app, scope))


def _session_filters(request: web.Request) -> dict[str, Any]:
    q = query(request, SessionQuery)
    tz = request.app[keys.SETTINGS].server.timezone
    filters: dict[str, Any] = {
        "start": parse_when(q.start, tz, end=False),
        "end": parse_when(q.end, tz, end=True),
    }
    for name in ("queue", "site", "terminal", "specialist", "outcome", "state", "rating",
                 "limit", "cursor"):
        if getattr(q, name) is not None:
            filters[name] = getattr(q, name)
    return filters


@takes_query(SessionQuery)
async def sessions(request: web.Request) -> web.Response:
    scope = await manager_scope(request)
    try:
        rows, cursor = await request.app[keys.DB].list_sessions(
            **_session_filters(request), scope=scope)
    except BadCursor as exc:
        fail(web.HTTPBadRequest, "invalid_cursor", str(exc))
    return reply({"sessions": rows, "next_cursor": cursor})


async def session_detail(request: web.Request) -> web.Response:
    scope = await manager_scope(request)
    db = request.app[keys.DB]
    detail = await db.get_session(request.match_info["id"])
    if detail is None or not await db.site_in_scope(detail.site_id, scope):
        fail(web.HTTPNotFound, "not_found", "no such session")
    data = msgspec.to_builtins(detail)
    participants = data.pop("participants")
    events = data.pop("events")
    recordings = await session_recordings(request.app, request.match_info["id"])
    captured = await session_documents(request.app, request.match_info["id"])
    return reply(
        {"session": data, "participants": participants, "events": events,
         "recordings": recordings} | captured
    )


@takes_query(SessionQuery)
async def sessions_csv(request: web.Request) -> web.StreamResponse:
    scope = await manager_scope(request)
    filters = _session_filters(request) | {"scope": scope}
    filters.pop("limit", None)
    filters.pop("cursor", None)
    return await stream_sessions_csv(request, filters)


async def list_sites(request: web.Request) -> web.Response:
    scope = await manager_scope(request)
    sites = await request.app[keys.DB].list_sites(scope)
    return reply(Sites(sites=[Site(id=s.id, name=s.name, kind=s.kind, unit_id=s.unit_id)
                              for s in sites]))


async def add_site(request: web.Request) -> web.Response:
    scope = await manager_scope(request)
    body = await body_of(request, SiteBody)
    unit_id = body.unit_id if body.unit_id is not None or scope.everything else scope.root
    if scope.units is not None and unit_id not in scope.units:
        fail(web.HTTPForbidden, "outside_unit", "the site must be in a unit of yours")
    try:
        site = await request.app[keys.DB].add_site(body.id, body.name, body.kind, unit_id)
    except NotFound as exc:
        fail(web.HTTPBadRequest, "unknown_unit", str(exc))
    except AlreadyExists as exc:
        fail(web.HTTPConflict, "exists", str(exc))
    return reply(Site(id=site.id, name=site.name, kind=site.kind, unit_id=site.unit_id),
                 status=201)


async def list_terminals(request: web.Request) -> web.Response:
    scope = await manager_scope(request)
    online = request.app[keys.BUS].connected()
    terminals = await request.app[keys.DB].list_terminals(scope=scope)
    return reply(
        {
            "terminals": [
                {
                    "id": t.id,
                    "name": t.name,
                    "site_id": t.site.id,
                    "site_name": t.site.name,
                    "online": f"terminal:{t.id}" in online,
                    "last_seen_at": t.last_seen_at,
                    "revoked": t.revoked_at is not None,
                }
                for t in terminals
            ]
        }
    )


async def add_terminal(request: web.Request) -> web.Response:
    scope = await manager_scope(request)
    body = await body_of(request, TerminalBody)
    if not await request.app[keys.DB].site_in_scope(body.site, scope):
        fail(web.HTTPBadRequest, "unknown_site", f"unknown site {body.site!r}")
    token = new_terminal_token()
    try:
        await request.app[keys.DB].add_terminal(
            body.id, body.site, body.name or body.id, token_hash(token)
        )
    except UnknownSite as exc:
        fail(web.HTTPBadRequest, "unknown_site", str(exc))
    except AlreadyExists as exc:
        fail(web.HTTPConflict, "exists", str(exc))
    return reply(NewTerminal(id=body.id, token=token), status=201)


async def revoke_terminal(request: web.Request) -> web.Response:
    scope = await manager_scope(request)
    terminal_id = request.match_info["id"]
    db = request.app[keys.DB]
    terminal = await db.get_terminal(terminal_id)
    seen = terminal is not None and await db.site_in_scope(terminal.site.id, scope)
    if not seen or not await db.revoke_terminal(terminal_id):
        fail(web.HTTPNotFound, "not_found", "no such terminal")
    await request.app[keys.BUS].kick(f"terminal:{terminal_id}", 4410, "revoked")
    return reply(Revoked(id=terminal_id, revoked=True))


async def queue_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the figures of GET /api/queues on every change and every 5 s."""
    import asyncio

    scope = await manager_scope(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    changed = asyncio.Event()
    watch = request.app[keys.BOARD].services.status
    watch.listeners.add(changed.set)
    try:
        while True:
            data = json.dumps(msgspec.to_builtins(await queue_figures(request.app, scope)))
            await response.write(f"event: queues\ndata: {data}\n\n".encode())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 5.0)
            changed.clear()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watch.listeners.discard(changed.set)
    return response


def setup_api(app: web.Application) -> None:
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", metrics)
    r.add_post("/api/login", login)
    r.add_post("/api/logout", logout)
    r.add_post("/api/password", change_password)
    r.add_get("/api/me", me)
    r.add_get("/api/ws-ticket", ws_ticket)
    r.add_get("/api/queues", queues)
    r.add_get("/api/queues/stream", queue_stream)
    r.add_get("/api/sessions", sessions)
    r.add_get("/api/sessions.csv", sessions_csv)
    r.add_get("/api/sessions/{id}", session_detail)
    r.add_get("/api/sites", list_sites)
    r.add_post("/api/sites", add_site)
    r.add_get("/api/terminals", list_terminals)
    r.add_post("/api/terminals", add_terminal)
    r.add_post("/api/terminals/{id}/revoke", revoke_terminal)
