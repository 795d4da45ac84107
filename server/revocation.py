"""Ending an identity's live WebSockets when its credentials end.

Logout, a password change and disabling an account close the user's console
socket at once, on every node (the bus's `kick` crosses nodes). A login that
expires, or an account disabled from another process (`vwin user ...` works on
the database), is noticed by each node's watch within `WATCH_INTERVAL_S`.
Each cause has its own close code (docs/protocol.md, docs/security.md).
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from server import keys
from signaling.identity import principal_of

LOGGED_OUT = 4411  # the user logged out (any of their logins)
EXPIRED = 4412  # no unexpired login left
PASSWORD_CHANGED = 4413  # the password changed: every login of the user ended
DISABLED = 4414  # the account was disabled
REASONS = {LOGGED_OUT: "logged_out", EXPIRED: "expired", PASSWORD_CHANGED: "password_changed",
           DISABLED: "disabled"}


async def end_identity(app: web.Application, username: str, cause: int) -> None:
    """The one entry point: end `username`'s sockets for `cause` (one of the codes above).

    DISABLED also disables the account, DISABLED and PASSWORD_CHANGED delete every login
    token, so no page or console of the user keeps working anywhere."""
    db = app[keys.DB]
    if cause == DISABLED:
        await db.set_disabled(username, True)
    if cause in (DISABLED, PASSWORD_CHANGED):
        await db.delete_user_tokens(username)
    await app[keys.BUS].kick(principal_of("specialist", username), cause, REASONS[cause])


async def end_lapsed(app: web.Application, now: dt.datetime) -> None:
    """Close the sockets of connected specialists whose logins all expired or who were
    disabled by another process (run by each node's periodic watch)."""
    bus = app[keys.BUS]
    prefix = principal_of("specialist", "")
    ids = [p[len(prefix):] for p in bus.connected() if p.startswith(prefix)]
    if not ids:
        return
    for user_id, disabled in (await app[keys.DB].lapsed_users(ids, now)).items():
        cause = DISABLED if disabled else EXPIRED
        await bus.kick(principal_of("specialist", user_id), cause, REASONS[cause])
