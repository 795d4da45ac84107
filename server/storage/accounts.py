"""Users (specialists, managers) and their login tokens.

Password hashing (argon2id) and token generation are the caller's; this
store keeps only hashes and never returns them except through `get_login`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.storage.engine import require_aware
from server.storage.errors import AlreadyExists, InvalidRecord, UnknownUser
from server.storage.inlists import padded
from server.storage.records import ROLES, Login, User
from server.storage.schema import auth_tokens, users
from server.storage.staffaudit import AccountAuditStore

_USER_COLUMNS = [c for c in users.c if c.name != "password_hash"]


def _user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=row.role,
        name=row.name,
        department=row.department,
        skills=dict(row.skills),
        disabled=bool(row.disabled),
        created_at=row.created_at,
        unit_id=row.unit_id,
        must_change_password=bool(row.must_change_password),
    )


def _check_skills(skills: Mapping[str, int]) -> dict[str, int]:
    try:
        checked = msgspec.convert(dict(skills), dict[str, int])
    except msgspec.ValidationError as exc:
        raise InvalidRecord(f"skills must map queue id -> level: {exc}") from None
    for queue, level in checked.items():
        if not queue or level < 1:
            raise InvalidRecord(f"skill {queue!r}:{level} needs a queue id and a level >= 1")
    return checked


class AccountStore(AccountAuditStore):
    """Users and login tokens."""

    async def add_user(
        self,
        username: str,
        role: str,
        password_hash: str,
        name: str,
        department: str | None = None,
        skills: Mapping[str, int] | None = None,
        *,
        unit_id: str | None = None,
        must_change_password: bool = False,
        actor: str | None = None,
    ) -> User:
        """Create an account; its id is its username. Raises `AlreadyExists`.

        With an `actor`, the creation goes into the account audit trail."""
        if not username or not username.strip() or username != username.strip():
            raise InvalidRecord(f"bad username {username!r}")
        if role not in ROLES:
            raise InvalidRecord(f"role must be one of {sorted(ROLES)}, got {role!r}")
        if not password_hash:
            raise InvalidRecord("password_hash is empty")
        user = User(
            id=username,
            username=username,
            role=role,
            name=name or username,
            department=department,
            skills=_check_skills(skills or {}),
            disabled=False,
            created_at=self._clock(),
            unit_id=unit_id,
            must_change_password=must_change_password,
        )
        row = msgspec.structs.asdict(user) | {"password_hash": password_hash}
        try:
            async with self._write() as conn:
                await conn.execute(users.insert().values(row))
                if actor is not None:
                    await self._audit(conn, actor, username, "created", {
                        "role": role, "name": user.name, "department": department,
                        "skills": user.skills, "unit_id": unit_id})
        except IntegrityError:
            raise AlreadyExists(f"user {username!r} already exists") from None
        return user

    async def get_user(self, user_id: str) -> User | None:
        """The user with that id, disabled or not."""
        async with self._read() as conn:
            row = (
                await conn.execute(sa.select(*_USER_COLUMNS).where(users.c.id == user_id))
            ).first()
        return None if row is None else _user(row)

    async def get_user_by_username(self, username: str) -> User | None:
        """The user with that username, disabled or not."""
        async with self._read() as conn:
            query = sa.select(*_USER_COLUMNS).where(users.c.username == username)
            row = (await conn.execute(query)).first()
        return None if row is None else _user(row)

    async def get_login(self, username: str) -> Login | None:
        """The user and its password hash, for `POST /api/login` only."""
        async with self._read() as conn:
            query = sa.select(users).where(users.c.username == username)
            row = (await conn.execute(query)).first()
        return None if row is None else Login(user=_user(row), password_hash=row.password_hash)

    async def set_password_hash(self, user_id: str, password_hash: str) -> bool:
        """Replace a hash (argon2 rehash on login); False for an unknown user."""
        if not password_hash:
            raise InvalidRecord("password_hash is empty")
        async with self._write() as conn:
            stmt = users.update().where(users.c.id == user_id)
            result = await conn.execute(stmt.values(password_hash=password_hash))
        return result.rowcount > 0

    async def set_disabled(self, user_id: str, disabled: bool, actor: str | None = None) -> bool:
        """Disable or re-enable an account; disabling deletes its login tokens."""
        async with self._write() as conn:
            stmt = users.update().where(users.c.id == user_id).values(disabled=disabled)
            result = await conn.execute(stmt)
            if result.rowcount and disabled:
                await conn.execute(auth_tokens.delete().where(auth_tokens.c.user_id == user_id))
            if result.rowcount and actor is not None:
                await self._audit(conn, actor, user_id, "disabled" if disabled else "enabled", {})
        return result.rowcount > 0

    async def change_password(self, user_id: str, password_hash: str, *, must_change: bool,
                              actor: str | None = None, action: str = "password_changed",
                              keep_token: str | None = None) -> bool:
        """A new password: every login token of the user but `keep_token` (a hash) ends.

        `must_change` marks a one-time password, to be replaced at the next login."""
        if not password_hash:
            raise InvalidRecord("password_hash is empty")
        async with self._write() as conn:
            result = await conn.execute(users.update().where(users.c.id == user_id).values(
                password_hash=password_hash, must_change_password=must_change))
            if not result.rowcount:
                return False
            ended = auth_tokens.delete().where(auth_tokens.c.user_id == user_id)
            if keep_token is not None:
                ended = ended.where(auth_tokens.c.token_hash != keep_token)
            await conn.execute(ended)
            if actor is not None:
                await self._audit(conn, actor, user_id, action, {})
        return True

    async def update_user(self, user_id: str, changes: Mapping[str, Any],
                          actor: str | None = None) -> User:
        """Change `name`, `department`, `skills` or `unit_id`. Raises `UnknownUser`."""
        allowed = {"name", "department", "skills", "unit_id"}
        if set(changes) - allowed:
            raise InvalidRecord(f"cannot change {sorted(set(changes) - allowed)}")
        values = dict(changes)
        if "skills" in values:
            values["skills"] = _check_skills(values["skills"])
        if "name" in values and not values["name"]:
            raise InvalidRecord("the name is empty")
        async with self._write() as conn:
            if values:
                result = await conn.execute(
                    users.update().where(users.c.id == user_id).values(values))
                if not result.rowcount:
                    raise UnknownUser(f"unknown user {user_id!r}")
                if actor is not None:
                    await self._audit(conn, actor, user_id, "changed", values)
            row = (await conn.execute(
                sa.select(*_USER_COLUMNS).where(users.c.id == user_id))).first()
        if row is None:
            raise UnknownUser(f"unknown user {user_id!r}")
        return _user(row)

    async def list_users(self, role: str | None = None) -> list[User]:
        """All users, by username, optionally of one role."""
        query = sa.select(*_USER_COLUMNS).order_by(users.c.username)
        if role is not None:
            query = query.where(users.c.role == role)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_user(row) for row in rows]

    async def add_token(self, token_hash: str, user_id: str, expires_at: dt.datetime) -> None:
        """Store a login token's hash. Raises `UnknownUser`, `AlreadyExists`."""
        require_aware(expires_at=expires_at)
        try:
            async with self._write() as conn:
                known = await conn.scalar(sa.select(users.c.id).where(users.c.id == user_id))
                if known is None:
                    raise UnknownUser(f"unknown user {user_id!r}")
                await conn.execute(
                    auth_tokens.insert().values(
                        token_hash=token_hash,
                        user_id=user_id,
                        created_at=self._clock(),
                        expires_at=expires_at,
                    )
                )
        except IntegrityError:
            raise AlreadyExists("token already stored") from None

    async def get_token_user(self, token_hash: str, now: dt.datetime) -> User | None:
        """The token's user, None when unknown, expired or the user is disabled."""
        require_aware(now=now)
        query = (
            sa.select(*_USER_COLUMNS)
            .join(auth_tokens, auth_tokens.c.user_id == users.c.id)
            .where(
                auth_tokens.c.token_hash == token_hash,
                auth_tokens.c.expires_at > now,
                users.c.disabled.is_(False),
            )
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _user(row)

    async def delete_token(self, token_hash: str) -> bool:
        """Log out; False when the token was not stored."""
        async with self._write() as conn:
            stmt = auth_tokens.delete().where(auth_tokens.c.token_hash == token_hash)
            result = await conn.execute(stmt)
        return result.rowcount > 0

    async def delete_user_tokens(self, user_id: str) -> int:
        """End every login of a user (password change, disabling); how many."""
        async with self._write() as conn:
            result = await conn.execute(
                auth_tokens.delete().where(auth_tokens.c.user_id == user_id))
        return result.rowcount

    async def lapsed_users(self, user_ids: list[str], now: dt.datetime) -> dict[str, bool]:
        """Of `user_ids`, those disabled (True) or without an unexpired token (False)."""
        require_aware(now=now)
        user_ids = padded(user_ids)  # a statement per length reached, not per count
        live = (
            sa.select(auth_tokens.c.user_id)
            .where(auth_tokens.c.user_id.in_(user_ids), auth_tokens.c.expires_at > now)
            .distinct()
        )
        query = sa.select(users.c.id, users.c.disabled).where(
            users.c.id.in_(user_ids),
            sa.or_(users.c.disabled.is_(True), users.c.id.not_in(live)),
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return {row.id: bool(row.disabled) for row in rows}

    async def purge_expired(self, now: dt.datetime) -> int:
        """Delete expired tokens; returns how many."""
        require_aware(now=now)
        async with self._write() as conn:
            stmt = auth_tokens.delete().where(auth_tokens.c.expires_at <= now)
            result = await conn.execute(stmt)
        return result.rowcount
