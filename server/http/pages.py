"""HTML pages (kiosk, console, manager), static files and the security headers.

Pages are thin shells rendered by aiohttp-jinja2; all data comes from the JSON
API and the WebSocket, fetched by the page's ES module. Staff pages check the
session cookie here so an anonymous visitor is sent to /login before any
script runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server import keys
from server.storage.records import User

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
SESSION_COOKIE = "vwin_session"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATIC_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def content_security_policy(host: str) -> str:
    """CSP for a page served to `host`: no inline script or style; WebSocket back to us only."""
    return f"{_STATIC_POLICY}; connect-src 'self' ws://{host} wss://{host}"


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": (
        "camera=(self), microphone=(self), display-capture=(self), geolocation=()"
    ),
}


def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", content_security_policy(request.host))


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every response, errors included, carries the CSP and the anti-framing headers.

    Streams (WebSocket, server-sent events) are already sent when the handler
    returns; they carry no HTML, so they are left alone.
    """
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _add_security_headers(request, exc)
        raise
    if not response.prepared:
        _add_security_headers(request, response)
    return response


async def _current_user(request: web.Request) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return await request.app[keys.AUTH].user_for_token(token)


def _login_redirect(request: web.Request) -> web.HTTPFound:
    location = request.app.router["login"].url_for().with_query(next=request.path_qs)
    return web.HTTPFound(location)


async def _require(request: web.Request, role: str) -> User:
    """The signed-in user with `role`; redirect to /login or answer 403 otherwise."""
    user = await _current_user(request)
    if user is None:
        raise _login_redirect(request)
    if user.must_change_password:
        raise web.HTTPFound(request.app.router["password"].url_for())
    if user.role != role:
        raise _forbidden(request, f"This page is for {role}s; you are signed in as a {user.role}.")
    return user


def _forbidden(request: web.Request, message: str) -> web.HTTPForbidden:
    body = aiohttp_jinja2.render_string(
        "error.html", request, {"title": "Not allowed", "message": message}
    )
    return web.HTTPForbidden(text=body, content_type="text/html")


async def _session_seen(request: web.Request, user: User) -> None:
    """A session page outside the manager's units is 404, as its API is."""
    db = request.app[keys.DB]
    detail = await db.get_session(request.match_info["session_id"])
    if detail is None or not await db.site_in_scope(detail.site_id, await db.scope_of(user)):
        body = aiohttp_jinja2.render_string(
            "error.html", request, {"title": "未找到 Not found",
                                    "message": "没有这个会话。 No such session."})
        raise web.HTTPNotFound(text=body, content_type="text/html")


async def _password_page(request: web.Request) -> web.StreamResponse:
    """Change one's own password; the one page a one-time password opens."""
    user = await _current_user(request)
    if user is None:
        raise _login_redirect(request)
    response = aiohttp_jinja2.render_template(
        "password.html", request, {"user": user, "path": request.path})
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(template: str, role: str | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        context: dict[str, Any] = {"user": None, "path": request.path}
        if role is not None:
            context["user"] = await _require(request, role)
        if "session_id" in request.match_info:
            await _session_seen(request, context["user"])
        context["kiosk"] = request.app[keys.SETTINGS].kiosk
        context.update(request.match_info)
        response = aiohttp_jinja2.render_template(template, request, context)
        response.headers["Cache-Control"] = "no-store"
        return response

    return handler


async def _root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(request.app.router["login"].url_for())


def setup_pages(app: web.Application) -> None:
    """Register the page routes, the templates and /static/ (the lead's create_app calls it)."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(WEB_DIR / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    if security_headers not in app.middlewares:
        app.middlewares.append(security_headers)
    router = app.router
    router.add_get("/", _root, name="root")
    router.add_get("/login", _page("login.html"), name="login")
    router.add_get("/kiosk", _page("kiosk.html"), name="kiosk")
    router.add_get("/password", _password_page, name="password")
    router.add_get("/console", _page("console.html", "specialist"), name="console")
    router.add_get("/manage", _page("manage/dashboard.html", "manager"), name="manage")
    router.add_get(
        "/manage/sessions", _page("manage/sessions.html", "manager"), name="manage-sessions"
    )
    router.add_get(
        "/manage/sessions/{session_id}",
        _page("manage/session.html", "manager"),
        name="manage-session",
    )
    router.add_get("/manage/sites", _page("manage/sites.html", "manager"), name="manage-sites")
    for page in ("reports", "actions", "matters", "staff"):
        router.add_get(f"/manage/{page}", _page(f"manage/{page}.html", "manager"),
                       name=f"manage-{page}")
    router.add_static("/static/", WEB_DIR / "static", name="static")
