"""TURN credentials by the TURN REST scheme (draft-uberti-behave-turn-rest; coturn's
`use-auth-secret`): no per-user accounts on the TURN server, only a shared secret.

`username = "<unix expiry>:<principal>"`, `credential = base64(HMAC-SHA1(secret,
username))`; coturn recomputes the HMAC and refuses the allocation once the expiry
has passed. Each connection gets its own entry in `welcome.ice_servers`, and a
connection that outlives it is pushed fresh ones (`ice.servers`) before they expire.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from server.config import IceSettings, TurnSettings
from signaling.identity import Identity

IceServers = list[dict[str, Any]]
IceServersProvider = Callable[[Identity], IceServers]
"""What the switchboard calls for a connection's `welcome.ice_servers`."""

REFRESH_LEAD_MAX_S = 3600.0  # fresh credentials go out at most an hour before expiry...
REFRESH_LEAD_SHARE = 0.2  # ...or a fifth of the TTL before, for short TTLs

_counts = {"issued": 0}


def turn_credentials_issued() -> int:
    """TURN credentials handed out by this process (for ops' `/metrics` counter)."""
    return _counts["issued"]


def rest_credentials(secret: str, principal: str, ttl_s: float,
                     now: float) -> tuple[str, str, int]:
    """(username, credential, expiry) valid for `ttl_s` seconds from `now`."""
    expiry = int(now + ttl_s)
    username = f"{expiry}:{principal}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode(), expiry


class TurnCredentials:
    """The `ice_servers` provider: the static `[ice] servers` plus, with a secret, one
    TURN entry with credentials made for the identity asking."""

    def __init__(self, turn: TurnSettings, ice: IceSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.turn = turn
        self.static = list(ice.servers)
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return bool(self.turn.secret and self.turn.urls)

    def __call__(self, who: Identity) -> IceServers:
        if not self.enabled:
            return list(self.static)
        username, credential, _ = rest_credentials(
            self.turn.secret, who.principal, self.turn.ttl_s, self.clock())
        _counts["issued"] += 1
        return [*self.static,
                {"urls": list(self.turn.urls), "username": username, "credential": credential}]

    def refresh_in(self) -> float:
        """Seconds after issuing until fresh credentials should be pushed."""
        ttl = float(self.turn.ttl_s)
        return ttl - min(REFRESH_LEAD_MAX_S, ttl * REFRESH_LEAD_SHARE)


TURN = web.AppKey("turn", TurnCredentials)


Refresh = Callable[[], Awaitable[None]]
"""Sends one connection fresh credentials (`Switchboard.credentials_expiring`)."""


async def push_fresh_credentials(provider: TurnCredentials, refresh: Refresh) -> None:
    """Per connection, until cancelled (when it closes): `ice.servers` before each expiry."""
    if not provider.enabled:
        return
    while True:
        await asyncio.sleep(provider.refresh_in())
        await refresh()


def start_refresh(provider: TurnCredentials | None, refresh: Refresh
                  ) -> asyncio.Task[None] | None:
    if provider is None or not provider.enabled:
        return None
    return asyncio.get_running_loop().create_task(push_fresh_credentials(provider, refresh))


async def stop_refresh(task: asyncio.Task[None] | None) -> None:
    """Cancel and await the push (a cancellation of the caller itself still propagates)."""
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def check_allocation(turn: TurnSettings, url: str | None = None,
                           timeout: float = 5.0, ttl_s: float | None = None) -> str:
    """Allocate a relay on the TURN server with fresh REST credentials (for `vwin doctor`).

    Returns the relayed address as "host:port"; raises ConnectionError saying why not.
    `ttl_s` < 0 makes credentials that expired already (a test shows they are refused)."""
    from aioice.turn import create_turn_endpoint
    from aiortc.rtcicetransport import parse_stun_turn_uri

    chosen = url or turn.urls[0]
    try:
        parsed = parse_stun_turn_uri(chosen)
    except ValueError as exc:
        raise ConnectionError(f"{chosen}: {exc}") from None
    username, password, _ = rest_credentials(
        turn.secret, "doctor:check", turn.ttl_s if ttl_s is None else ttl_s, time.time())
    try:
        async with asyncio.timeout(timeout):
            relay, _ = await create_turn_endpoint(
                asyncio.DatagramProtocol, (parsed["host"], parsed["port"]), username, password,
                ssl=parsed["scheme"] == "turns", transport=parsed["transport"], lifetime=60)
    except TimeoutError:
        raise ConnectionError(f"{chosen}: no answer within {timeout:.0f} s") from None
    except Exception as exc:
        raise ConnectionError(f"{chosen}: {exc}") from None
    address = relay.get_extra_info("sockname")
    relay.close()
    return f"{address[0]}:{address[1]}"
