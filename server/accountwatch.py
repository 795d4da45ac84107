"""Ending a person's live connections when their account is disabled or their password
changes: at once from the HTTP API (through the bus, on whichever node the console is),
within `WATCH_INTERVAL_S` when the CLI (another process) made the change.

The close code is `ACCOUNT_ENDED` with the reason (`disabled`, `password_changed`) as the
close message; the console translates it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from server import keys
from server.ws import ACCOUNT_ENDED
from signaling.identity import principal_of

log = logging.getLogger(__name__)

WATCH_INTERVAL_S: Final = 5.0  # as for revoked terminals: a CLI change ends within 5 s
SPECIALIST: Final = "specialist"


async def end_connections(app: web.Application, username: str, reason: str) -> None:
    """Close every live signalling connection of `username`, on any node."""
    await app[keys.BUS].kick(principal_of(SPECIALIST, username), ACCOUNT_ENDED, reason)


async def account_watch(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the watch for changes made by the CLI."""
    task = asyncio.get_running_loop().create_task(_watch(app))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _watch(app: web.Application) -> None:
    prefix = f"{SPECIALIST}:"
    connections = app[keys.CONNECTIONS]
    while True:
        await asyncio.sleep(WATCH_INTERVAL_S)
        try:
            connected = {
                conn.principal.removeprefix(prefix): conn.authenticated_at
                for conn in list(connections)
                if conn.principal and conn.principal.startswith(prefix)
                and conn.authenticated_at is not None
            }
            if not connected:
                continue
            for username in await app[keys.DB].ended_since(connected):
                user = await app[keys.DB].get_user(username)
                reason = "disabled" if user is None or user.disabled else "password_changed"
                await end_connections(app, username, reason)
        except Exception:
            log.exception("account watch failed")
