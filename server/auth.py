"""Authentication: argon2id passwords, bearer tokens, WebSocket tickets, device tokens.

Only hashes are stored. Login failures are throttled per (username, address) and per
address; unknown users and wrong passwords get the same answer in the same time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import secrets
import time
from collections.abc import Callable

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.coalesce import Coalescer
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


class _Record(msgspec.Struct):
    failures: int
    last: float
    blocked_until: float = 0.0


class Throttle:
    """Failed logins counted per key; past `limit` each failure blocks the key for a
    delay that doubles (`base_s`, 2x, 4x... up to `max_s`). A record is forgotten
    `window_s` after its last failure (`purge`)."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float],
                 base_s: float = 1.0, max_s: float = 900.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.base_s = base_s
        self.max_s = max_s
        self._records: dict[str, _Record] = {}

    def check(self, key: str) -> None:
        record = self._records.get(key)
        now = self.clock()
        if record is not None and record.blocked_until > now:
            raise Throttled(int(record.blocked_until - now) + 1)

    def fail(self, key: str) -> None:
        now = self.clock()
        record = self._records.get(key)
        if record is None or record.last <= now - self.window_s:
            record = self._records[key] = _Record(failures=0, last=now)
        record.failures += 1
        record.last = now
        over = record.failures - self.limit
        if over >= 0:
            record.blocked_until = now + min(self.max_s, self.base_s * 2 ** min(over, 30))

    def clear(self, key: str) -> None:
        self._records.pop(key, None)

    def purge(self) -> int:
        """Forget records idle past the window and no longer blocking; how many."""
        now = self.clock()
        stale = [k for k, r in self._records.items()
                 if r.last <= now - self.window_s and r.blocked_until <= now]
        for key in stale:
            del self._records[key]
        return len(stale)

    def __len__(self) -> int:
        return len(self._records)


class AuthService:
    def __init__(
        self, db: Database, settings: AuthSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        # Per (user, address): a user's own mistypes, or a guesser at one address, slow down
        # that pair only, so nobody elsewhere can lock a real user out. Per address: one
        # address guessing many usernames slows down as a whole.
        def now() -> float:
            return self.clock()  # read at each call: a test may swap the service's clock

        self.pair_throttle = Throttle(settings.max_failures, settings.failure_window_s, now,
                                      max_s=settings.max_delay_s)
        self.address_throttle = Throttle(settings.max_failures_per_address,
                                         settings.failure_window_s, now,
                                         max_s=settings.max_delay_s)
        self._terminals: Coalescer[Terminal] | None = (
            Coalescer(db.terminals_by_token_hashes) if settings.hello_batch else None)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    async def login(self, username: str, password: str, address: str) -> LoginResult | None:
        """A token for good credentials, None otherwise; raises Throttled."""
        pair = f"{username.lower()}\0{address}"
        self.address_throttle.check(address)
        self.pair_throttle.check(pair)
        login = await self.db.get_login(username)
        stored = login.password_hash if login is not None else _dummy_hash()
        # argon2 is deliberately slow: verify in a thread so the event loop (and every call
        # it carries) does not stall for a login.
        ok = await asyncio.to_thread(_verify, stored, password) and login is not None
        if not ok or login is None or login.user.disabled:
            self.pair_throttle.fail(pair)
            self.address_throttle.fail(address)
            return None
        self.pair_throttle.clear(pair)
        if _hasher.check_needs_rehash(stored):
            rehashed = await asyncio.to_thread(hash_password, password)
            await self.db.set_password_hash(login.user.id, rehashed)
        token = secrets.token_urlsafe(32)
        expires = self._now() + dt.timedelta(seconds=self.settings.token_ttl_s)
        await self.db.add_token(token_hash(token), login.user.id, expires)
        return LoginResult(token=token, role=login.user.role, expires_at=expires, user=login.user)

    async def change_password(self, user: User, current: str, new: str, address: str) -> bool:
        """Set a new password if `current` is right (throttled like a login); every login
        of the user then ends (the caller closes their sockets)."""
        pair = f"{user.username.lower()}\0{address}"
        self.pair_throttle.check(pair)
        login = await self.db.get_login(user.username)
        if login is None or not await asyncio.to_thread(_verify, login.password_hash, current):
            self.pair_throttle.fail(pair)
            return False
        await self.db.change_password(user.id, await asyncio.to_thread(hash_password, new),
                                      must_change=False, actor=user.username)
        return True

    async def purge(self) -> int:
        """Delete expired tokens and tickets, forget stale throttle records; how many."""
        removed = await self.db.purge_expired(self._now())
        removed += await self.db.purge_handoff_tickets(self._now())
        return removed + self.pair_throttle.purge() + self.address_throttle.purge()

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
        """The terminal a device token opens, read now (hellos at once share one query)."""
        if not token.startswith(TERMINAL_TOKEN_PREFIX):
            return None
        if self._terminals is None:
            return await self.db.terminal_by_token_hash(token_hash(token))
        return await self._terminals.get(token_hash(token))
