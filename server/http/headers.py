"""The headers every response carries: security headers, and a `Server` without a version.

Set in `on_response_prepare`, which aiohttp runs for every response just
before its headers go out: pages, JSON, errors, files, server-sent events,
CSV streams and the WebSocket upgrade alike (a middleware misses responses
already prepared by the handler). Nothing here is taken from the request: the
`Host` header is never reflected into a header (CSP's `'self'` covers the
page's own ws:/wss: origin).
"""

from __future__ import annotations

import aiohttp.web_response
from aiohttp import web

SERVER = "vwin"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Permissions-Policy": (
        "camera=(self), microphone=(self), display-capture=(self), geolocation=()"
    ),
}

# aiohttp answers a request it cannot parse before any application sees it, naming itself
# and Python with their versions; its default Server value is a module constant.
aiohttp.web_response.SERVER_SOFTWARE = SERVER  # type: ignore[attr-defined]


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def setup_headers(app: web.Application) -> None:
    app.on_response_prepare.append(add_headers)
