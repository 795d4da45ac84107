"""`GET /metrics`, for a Prometheus server: a bearer token or an allowed address.

`[metrics] token` (sent as `Authorization: Bearer ...`) opens it from anywhere;
otherwise the client address must be in `[metrics] allow` (CIDRs, default loopback).
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from server import keys
from server.config import MetricsSettings
from server.metrics import METRICS


def allowed(settings: MetricsSettings, authorization: str, remote: str | None) -> bool:
    """A matching bearer token, or a client address inside one of the allowed networks."""
    if settings.token and authorization.startswith("Bearer "):
        return hmac.compare_digest(authorization[7:].strip().encode(), settings.token.encode())
    try:
        address = ipaddress.ip_address((remote or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in settings.allow)


async def metrics(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS].metrics
    if not allowed(settings, request.headers.get("Authorization", ""), request.remote):
        raise web.HTTPForbidden(text="metrics: send [metrics] token as a bearer token, or scrape "
                                     "from an address in [metrics] allow\n")
    body = await request.app[METRICS].render(request.app)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
