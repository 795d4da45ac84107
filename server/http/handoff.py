"""The phone hand-off's QR code: `GET /m/<ticket>/qr.svg` (the page `/m/<ticket>` is in
`pages.py`).

The kiosk shows it while the visitor waits (`call.handoff_ready` names the URL); it
encodes the absolute URL of the phone's page on the origin the kiosk itself reached (a
proxy's `Forwarded` origin once trusted, `server/edge.py`). Only an open ticket has a
QR code: used, expired, unknown ones, or one whose call is no longer waiting, are 404.
"""

from __future__ import annotations

import io
import re

import segno
from aiohttp import web

from server import keys
from signaling.handoff import PAGE_PATH, TICKET_PREFIX, ticket_opens

TICKET = re.compile("^" + TICKET_PREFIX + r"[A-Za-z0-9_-]{16,64}$")


async def qr_svg(request: web.Request) -> web.Response:
    ticket = request.match_info["ticket"]
    if TICKET.match(ticket) is None:
        raise web.HTTPNotFound(text="no such hand-off ticket")
    if not await ticket_opens(request.app[keys.BOARD].services, ticket):
        raise web.HTTPNotFound(text="no such hand-off ticket, or it was used or expired")
    url = f"{request.scheme}://{request.host}{PAGE_PATH}{ticket}"
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False,
                                    svgns=True, title="QR")
    return web.Response(body=out.getvalue(), content_type="image/svg+xml",
                        headers={"Cache-Control": "no-store"})


def setup_handoff(app: web.Application) -> None:
    app.router.add_get(PAGE_PATH + "{ticket}/qr.svg", qr_svg)
