"""Who is calling a route that terminals may use too: a kiosk's device token (bearer) or
a staff login (bearer or cookie, as `require`)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from server import keys
from server.auth import TERMINAL_TOKEN_PREFIX
from server.http.auth import fail, request_token, require
from server.storage.records import Terminal, User
from signaling.identity import Role, principal_of


@dataclass(frozen=True, slots=True)
class Caller:
    """Exactly one of `terminal` and `user` is set."""

    terminal: Terminal | None = None
    user: User | None = None

    @property
    def principal(self) -> str:
        """The participant id this caller has in a call (`terminal:T1`, `specialist:lin`)."""
        if self.terminal is not None:
            return principal_of(Role.TERMINAL, self.terminal.id)
        assert self.user is not None
        return principal_of(self.user.role, self.user.username)

    @property
    def name(self) -> str:
        """Who, for access logs: the username, or `terminal:T1`."""
        return self.user.username if self.user is not None else self.principal


async def caller(request: web.Request, *roles: str) -> Caller:
    """A terminal's device token, or a staff login of one of `roles` (401/403 otherwise)."""
    token, from_cookie = request_token(request)
    if token and not from_cookie and token.startswith(TERMINAL_TOKEN_PREFIX):
        terminal = await request.app[keys.AUTH].terminal_for_token(token)
        if terminal is None:
            fail(web.HTTPUnauthorized, "unauthorized", "unknown or revoked device token")
        return Caller(terminal=terminal)
    return Caller(user=await require(request, *roles))
