"""The network edge: TLS, reverse proxies and HSTS.

Behind a reverse proxy every request comes from the proxy's address over plain HTTP;
only a proxy named in `[server] trusted_proxies` is believed when it says who the
client is (`X-Forwarded-For`) and whether it came over HTTPS (`X-Forwarded-Proto`).
Anyone else could send those headers to dodge login throttling or fake log lines,
so from other addresses they are ignored.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from server.config import ServerSettings

HSTS = "max-age=31536000"  # a year: browsers then refuse plain HTTP to this host
FORWARDED_REMOTE = web.RequestKey("forwarded_remote", str)  # the client a trusted proxy named
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def tls_context(server: ServerSettings) -> ssl.SSLContext | None:
    """The server's TLS context from `[server] tls_cert` / `tls_key`, or None for plain HTTP."""
    if not server.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(server.tls_cert, server.tls_key)
    return context


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def client_address(remote: str | None, forwarded_for: Sequence[str],
                   trusted: Sequence[Network]) -> str | None:
    """The client: the right-most `X-Forwarded-For` hop not itself a trusted proxy.

    Hops are only read while every hop after them is trusted, starting from the
    socket's peer; a malformed hop stops the walk at the last good address."""
    peer = _address(remote or "")
    if peer is None or not any(peer in net for net in trusted):
        return remote
    hops = [h for header in forwarded_for for h in header.split(",") if h.strip()]
    client = remote
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        client = str(address)
        if not any(address in net for net in trusted):
            break
    return client


def forwarded_middleware(trusted_proxies: Sequence[str]) -> Middleware:
    """Believe trusted proxies about the client and the scheme; send HSTS over HTTPS."""
    trusted = [ipaddress.ip_network(t, strict=False) for t in trusted_proxies]

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = _address(request.remote or "")
        if trusted and peer is not None and any(peer in net for net in trusted):
            changes: dict[str, str] = {}
            client = client_address(request.remote, request.headers.getall(
                "X-Forwarded-For", []), trusted)
            if client is not None:
                changes["remote"] = client
                request[FORWARDED_REMOTE] = client  # for the access log (it sees this request)
            proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
            if proto in ("http", "https"):
                changes["scheme"] = proto
            request = request.clone(**changes)  # type: ignore[arg-type]
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if request.secure:
                exc.headers.setdefault("Strict-Transport-Security", HSTS)
            raise
        if request.secure and not response.prepared:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    return forwarded
