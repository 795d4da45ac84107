"""Who is calling the HTTP API: bearer token or session cookie (with CSRF check)."""

from __future__ import annotations

import secrets
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import msgspec
from aiohttp import web

from server import keys
from server.storage.records import User

SESSION_COOKIE = "vwin_session"
CSRF_COOKIE = "vwin_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HOME_BY_ROLE = {"specialist": "/console", "manager": "/manage"}
_BASE = "https://this.invalid"  # `next` is resolved against a stand-in for our own origin


def fail(status: type[web.HTTPException], code: str, message: str) -> NoReturn:
    text = msgspec.json.encode({"error": code, "message": message}).decode()
    raise status(text=text, content_type="application/json")


def request_token(request: web.Request) -> tuple[str | None, bool]:
    """(token, came_from_cookie)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip(), False
    return request.cookies.get(SESSION_COOKIE), True


async def require(request: web.Request, *roles: str, pending_ok: bool = False) -> User:
    """The authenticated user, or 401 (no/bad token), 403 (wrong role or CSRF, or a password
    still to be changed: only the routes with `pending_ok` answer before that)."""
    token, from_cookie = request_token(request)
    user = await request.app[keys.AUTH].user_for_token(token)
    if user is None:
        fail(web.HTTPUnauthorized, "unauthorized", "log in first")
    if from_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not expected or not secrets.compare_digest(sent, expected):
            fail(web.HTTPForbidden, "csrf", f"missing or wrong {CSRF_HEADER} header")
    if user.must_change_password and not pending_ok:
        fail(web.HTTPForbidden, "password_change_required", "change the password first")
    if roles and user.role not in roles:
        fail(web.HTTPForbidden, "forbidden", f"this needs the role {' or '.join(roles)}")
    return user


def set_login_cookies(response: web.StreamResponse, token: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=secure,
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(24),
        max_age=max_age,
        httponly=False,
        samesite="Strict",
        path="/",
        secure=secure,
    )


def clear_login_cookies(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")


def origin_allowed(request: web.Request) -> bool:
    """Browsers send Origin; it must be this server or a configured one. Kiosk apps may omit it."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    allowed = request.app[keys.SETTINGS].server.allowed_origins
    if origin in allowed or "*" in allowed:
        return True
    host = request.headers.get("Host", "")
    return origin in (f"http://{host}", f"https://{host}")


def safe_next(asked: str | None, role: str) -> str:
    """Where to go after login: `asked` when it is a path on this origin, else the role's home.

    Parsed as a URL, with backslashes read as slashes (as browsers do) and control
    characters refused, so `//evil`, `/\\evil`, `https://evil/` and `javascript:` go home."""
    home = HOME_BY_ROLE.get(role, "/")
    if not asked or any(ord(c) < 0x20 or c == "\x7f" for c in asked):
        return home
    try:
        parts = urlsplit(asked.replace("\\", "/"))
    except ValueError:  # e.g. "//[": not a URL at all
        return home
    base = urlsplit(_BASE)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or \
            parts.path.startswith("//"):
        return home
    resolved = urlsplit(urlunsplit((base.scheme, base.netloc, parts.path, parts.query,
                                    parts.fragment)))
    if (resolved.scheme, resolved.netloc) != (base.scheme, base.netloc):
        return home
    return urlunsplit(("", "", resolved.path or "/", resolved.query, resolved.fragment))
