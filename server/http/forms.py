"""Forms over HTTP: the presented pages (in a frame), the signed PDF, a session's forms.

The signed PDF is for managers whose units hold the session and for specialists of the
departments that sign the form's joint action, as an attachment (never shown inline).
The presented pages are the form's HTML, opened in a frame by the call's participants
through the `url` of `form.presented`, which carries the form's own key; they run no
script and load nothing (their own Content-Security-Policy, `sandbox`).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any

import msgspec
from aiohttp import web

from server import keys
from server.http.auth import fail, require
from server.http.joint import _may_see
from server.http.params import query, takes_query
from server.recording.catalog import resolve
from signaling.forms import FormRecord

MANAGER = "manager"
SPECIALIST = "specialist"

#: The presented pages: inline styles and the data: images of the template, nothing else.
PAGES_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox")


class PagesQuery(msgspec.Struct, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


def describe(form: FormRecord) -> dict[str, Any]:
    """A form as the manager's session page lists it; `url` downloads the signed PDF."""
    return {
        "id": form.id, "action_id": form.action_id, "template": form.template,
        "state": form.state, "presented_by": form.presented_by,
        "presented_at": form.presented_at.isoformat(), "closed_by": form.closed_by,
        "closed_at": form.closed_at.isoformat() if form.closed_at else None,
        "sha256": form.sha256, "unsigned_sha256": form.unsigned_sha256,
        "url": f"/api/forms/{form.id}" if form.state == "signed" else None,
    }


async def signed_form(request: web.Request) -> web.StreamResponse:
    """`GET /api/forms/{form_id}`: the signed PDF, as an attachment."""
    user = await require(request, MANAGER, SPECIALIST)
    db = request.app[keys.DB]
    form = await db.get_form(request.match_info["form_id"])
    stored = None if form is None else await db.get_action(form.action_id)
    if form is None or stored is None or not await _may_see(db, user, stored):
        fail(web.HTTPNotFound, "not_found", "no such form")
    if form.state != "signed" or form.path is None:
        fail(web.HTTPConflict, "not_signed", f"the form is {form.state}, not signed")
    try:
        path = resolve(Path(request.app[keys.SETTINGS].recording.dir), form.path)
    except ValueError:
        fail(web.HTTPNotFound, "missing", "the signed form is not on this server")
    if not path.is_file():
        fail(web.HTTPNotFound, "missing", "the signed form's file is missing")
    return web.FileResponse(path, headers={
        "Content-Type": "application/pdf",
        "Content-Disposition": f'attachment; filename="form-{form.id}.pdf"',
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    })


@takes_query(PagesQuery)
async def form_pages(request: web.Request) -> web.Response:
    """`GET /api/forms/{form_id}/pages?key=`: the form as presented (HTML, for a frame)."""
    db = request.app[keys.DB]
    form = await db.get_form(request.match_info["form_id"])
    key = query(request, PagesQuery).key
    if form is None or not secrets.compare_digest(key.encode(), form.view_key.encode()):
        fail(web.HTTPNotFound, "not_found", "no such form, or a wrong key")
    content = await db.form_content(form.id)
    if content is None:
        fail(web.HTTPNotFound, "not_found", "no such form")
    return web.Response(text=content[1], content_type="text/html", headers={
        "Content-Security-Policy": PAGES_POLICY,
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, no-store",
    })


async def session_forms(request: web.Request) -> web.Response:
    """`GET /api/sessions/{id}/forms`: the session's forms, signed, declined or open."""
    user = await require(request, MANAGER)
    db = request.app[keys.DB]
    session_id = request.match_info["id"]
    if not await db.session_in_scope(session_id, await db.scope_of(user)):
        fail(web.HTTPNotFound, "not_found", "no such session")
    forms = await db.session_forms([session_id])
    return web.json_response({"forms": [describe(f) for f in forms]})


def setup_forms(app: web.Application) -> None:
    app.router.add_get("/api/forms/{form_id}", signed_form)
    app.router.add_get("/api/forms/{form_id}/pages", form_pages)
    app.router.add_get("/api/sessions/{id}/forms", session_forms)
