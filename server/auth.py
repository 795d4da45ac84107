"""Authentication: argon2id passwords, bearer tokens, WebSocket tickets, device tokens.

Only hashes are stored. Login failures are throttled per username and per
address; unknown users and wrong passwords get the same answer in the same time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import secrets
import time
from collections import deque
from collections.abc import Callable

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.config import AuthSettings
from server.storage.db import Database
from server.storage.records import Terminal, User

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified for unknown users (same timing); made on first use, not at import (seconds)."""
    return _hasher.hash(secrets.token_urlsafe(16))


TERMINAL_TOKEN_PREFIX = "vwt_"
TICKET_PREFIX = "vwk_"


def _verify(stored: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(stored, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_hash(token: str) -> str:
    """Tokens are 256-bit random values, so a fast hash is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_terminal_token() -> str:
    return TERMINAL_TOKEN_PREFIX + secrets.token_urlsafe(32)


class LoginResult(msgspec.Struct, kw_only=True):
    token: str
    role: str
    expires_at: dt.datetime
    user: User


class Throttled(Exception):
    """Too many failed logins; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after} s")
        self.retry_after = retry_after


class Throttle:
    """Sliding-window failure counter per key (username, address)."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def check(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            times = self._failures.get(key)
            if not times:
                continue
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.limit:
                raise Throttled(int(times[0] + self.window_s - now) + 1)

    def fail(self, *keys: str) -> None:
        now = self.clock()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


class AuthService:
    def __init__(
        self, db: Database, settings: AuthSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.throttle = Throttle(settings.max_failures, settings.failure_window_s, clock)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    async def login(self, username: str, password: str, address: str) -> LoginResult | None:
        """A token for good credentials, None otherwise; raises Throttled."""
        keys = (f"user:{username.lower()}", f"addr:{address}")
        self.throttle.check(*keys)
        login = await self.db.get_login(username)
        stored = login.password_hash if login is not None else _dummy_hash()
        # argon2 is deliberately slow: verify in a thread so the event loop (and every call
        # it carries) does not stall for a login.
        ok = await asyncio.to_thread(_verify, stored, password) and login is not None
        if not ok or login is None or login.user.disabled:
            self.throttle.fail(*keys)
            return None
        self.throttle.clear(keys[0])
        if _hasher.check_needs_rehash(stored):
            rehashed = await asyncio.to_thread(hash_password, password)
            await self.db.set_password_hash(login.user.id, rehashed)
        token = secrets.token_urlsafe(32)
        expires = self._now() + dt.timedelta(seconds=self.settings.token_ttl_s)
        await self.db.add_token(token_hash(token), login.user.id, expires)
        return LoginResult(token=token, role=login.user.role, expires_at=expires, user=login.user)

    async def check_password(self, username: str, password: str) -> User | None:
        """The user if `password` is theirs (no token, no throttle: they are signed in)."""
        login = await self.db.get_login(username)
        if login is None or login.user.disabled:
            return None
        ok = await asyncio.to_thread(_verify, login.password_hash, password)
        return login.user if ok else None

    async def user_for_token(self, token: str | None) -> User | None:
        if not token or token.startswith(TICKET_PREFIX):
            return None
        return await self.db.get_token_user(token_hash(token), self._now())

    async def logout(self, token: str) -> None:
        await self.db.delete_token(token_hash(token))

    async def issue_ticket(self, user: User) -> str:
        """A short-lived single-use token for a browser's WebSocket `hello`."""
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        expires = self._now() + dt.timedelta(seconds=self.settings.ticket_ttl_s)
        await self.db.add_token(token_hash(ticket), user.id, expires)
        return ticket

    async def user_for_hello(self, token: str) -> User | None:
        """A login token, or a ticket (consumed: it works once)."""
        if token.startswith(TICKET_PREFIX):
            hashed = token_hash(token)
            user = await self.db.get_token_user(hashed, self._now())
            if user is not None and not await self.db.delete_token(hashed):
                return None
            return user
        return await self.user_for_token(token)

    async def terminal_for_token(self, token: str) -> Terminal | None:
        if not token.startswith(TERMINAL_TOKEN_PREFIX):
            return None
        return await self.db.terminal_by_token_hash(token_hash(token))
