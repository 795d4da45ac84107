"""HTML pages (kiosk, console, manager) and static files (headers: server/headers.py).

Pages are thin shells rendered by aiohttp-jinja2; all data comes from the JSON
API and the WebSocket, fetched by the page's ES module. Staff pages check the
session cookie here so an anonymous visitor is sent to /login before any
script runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server import keys
from server.appointments import APPOINTMENTS
from server.i18n import (
    LANG_COOKIE,
    LANG_COOKIE_MAX_AGE,
    LANGUAGES,
    Catalogs,
    choose_language,
    config_names,
    format_datetime,
)
from server.joint import JOINT
from server.storage.records import User

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
SESSION_COOKIE = "vwin_session"
CATALOGS = web.AppKey("catalogs", Catalogs)
#: The kiosk switches language in place (a visitor mid-call cannot reload); staff pages reload.
_BOTH_LANGUAGES = frozenset({"kiosk.html", "phone.html"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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
        raise _forbidden(request, role, user.role)
    return user


def _forbidden(request: web.Request, role: str, actual: str) -> web.HTTPForbidden:
    context = _language_context(request, "error.html")
    t = context["t"]
    context.update(
        title=t("error.page.forbidden"),
        message=t("error.page.wrongRole", role=t(f"role.{role}"), actual=t(f"role.{actual}")),
    )
    body = aiohttp_jinja2.render_string("error.html", request, context)
    return web.HTTPForbidden(text=body, content_type="text/html")


def _language_context(request: web.Request, template: str) -> dict[str, Any]:
    """`lang`, `t` and the data block the page's modules read (web/static/js/i18n.js)."""
    app = request.app
    catalogs, settings = app[CATALOGS], app[keys.SETTINGS]
    kiosk = template in _BOTH_LANGUAGES
    lang = "zh-CN" if kiosk else choose_language(request.query, request.cookies)
    names = config_names(settings, app[JOINT].work.types if JOINT in app else {})
    pick = 1 if lang == "en" else 0

    def t(key: str, **params: object) -> str:
        return catalogs.text(lang, key, **params)

    shipped = LANGUAGES if kiosk else (lang,)
    return {
        "lang": lang,
        "other_lang": next(other for other in LANGUAGES if other != lang),
        "t": t,
        "when": lambda moment: format_datetime(moment, lang, settings.server.timezone),
        "queues": [{"id": k, "label": v[pick]} for k, v in names["queue"].items()],
        "departments": [{"id": k, "label": v[pick]} for k, v in names["department"].items()],
        "page_i18n": {
            "lang": lang,
            "catalogs": {code: catalogs.catalog(code) for code in shipped},
            "names": names,
            "timezone": settings.server.timezone,
        },
    }


def _page(template: str, role: str | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        context: dict[str, Any] = {"user": None, "path": request.path}
        if role is not None:
            context["user"] = await _require(request, role)
        if "session_id" in request.match_info:
            await _session_seen(request, context["user"])
        context["kiosk"] = request.app[keys.SETTINGS].kiosk
        context.update(request.match_info)
        context.update(_language_context(request, template))
        response = aiohttp_jinja2.render_template(template, request, context)
        response.headers["Cache-Control"] = "no-store"
        if request.query.get("lang") == context["lang"] and template not in _BOTH_LANGUAGES:
            response.set_cookie(LANG_COOKIE, context["lang"], max_age=LANG_COOKIE_MAX_AGE,
                                path="/", samesite="Lax")
        return response

    return handler


async def _session_seen(request: web.Request, user: User) -> None:
    """A session page outside the manager's units is 404, as its API is."""
    db = request.app[keys.DB]
    detail = await db.get_session(request.match_info["session_id"])
    if detail is None or not await db.site_in_scope(detail.site_id, await db.scope_of(user)):
        context = _language_context(request, "error.html")
        t = context["t"]
        context.update(title=t("error.page.notFound"), message=t("error.page.noSession"))
        body = aiohttp_jinja2.render_string("error.html", request, context)
        raise web.HTTPNotFound(text=body, content_type="text/html")


async def _password_page(request: web.Request) -> web.StreamResponse:
    """Change one's own password; the one page a one-time password opens."""
    user = await _current_user(request)
    if user is None:
        raise _login_redirect(request)
    context: dict[str, Any] = {"user": user, "path": request.path}
    context.update(_language_context(request, "password.html"))
    response = aiohttp_jinja2.render_template("password.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _book_page(request: web.Request) -> web.StreamResponse:
    """The public booking page: the queues that take appointments and the days one may book."""
    settings = request.app[keys.SETTINGS]
    context: dict[str, Any] = {"user": None, "path": request.path}
    context.update(_language_context(request, "book.html"))
    first, last = request.app[APPOINTMENTS].bookable_days(dt.datetime.now(dt.UTC))
    context["page_i18n"]["booking"] = {
        "queues": [q.id for q in settings.queues if q.appointments_per_slot > 0],
        "days": [(first + dt.timedelta(days=n)).isoformat()
                 for n in range((last - first).days + 1)],
    }
    response = aiohttp_jinja2.render_template("book.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    return response


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
    app[CATALOGS] = Catalogs.load()
    router = app.router
    router.add_get("/", _root, name="root")
    router.add_get("/login", _page("login.html"), name="login")
    router.add_get("/kiosk", _page("kiosk.html"), name="kiosk")
    router.add_get("/m/{ticket}", _page("phone.html"), name="phone")  # a kiosk's call, handed off
    router.add_get("/password", _password_page, name="password")
    router.add_get("/book", _book_page, name="book")
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
