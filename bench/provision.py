"""Accounts for the benchmarks, made in bulk before the server starts.

`Database.add_terminal` commits one durable (synchronous=FULL) transaction per
terminal, ~17 ms each here: 10,000 terminals would take minutes. So the schema
is made by the storage API (`Database.upgrade`) and the rows are inserted with
the storage's own table definitions in one transaction per table.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import create_async_engine

from server.auth import hash_password, new_terminal_token, token_hash
from server.storage.db import Database
from server.storage.schema import auth_tokens, sites, terminals, users

SITE_ID = "bench-park"
TOKEN_TTL = dt.timedelta(days=1)


@dataclass
class Accounts:
    """Device tokens by terminal id and login tokens by specialist username."""

    terminals: dict[str, str] = field(default_factory=dict)
    specialists: dict[str, str] = field(default_factory=dict)


async def provision(db_url: str, n_terminals: int, n_specialists: int,
                    skills: dict[str, int] | None = None) -> Accounts:
    """Create the schema, one site, `n_terminals` terminals and `n_specialists` specialists."""
    db = await Database.connect(db_url)
    try:
        await db.upgrade()
    finally:
        await db.close()
    now = dt.datetime.now(dt.UTC)
    accounts = Accounts(
        terminals={f"T{i:05d}": new_terminal_token() for i in range(n_terminals)},
        specialists={f"s{i:05d}": secrets.token_urlsafe(32) for i in range(n_specialists)},
    )
    password = hash_password("bench-password")
    engine = create_async_engine(db_url)  # either database (SQLite, PostgreSQL)
    try:
        async with engine.begin() as conn:
            await conn.execute(sites.insert().values(id=SITE_ID, name="Bench park",
                                                     kind="park", created_at=now))
            if accounts.terminals:
                await conn.execute(terminals.insert(), [
                    {"id": tid, "site_id": SITE_ID, "name": f"Kiosk {tid}",
                     "token_hash": token_hash(tok), "created_at": now}
                    for tid, tok in accounts.terminals.items()])
            if accounts.specialists:
                await conn.execute(users.insert(), [
                    {"id": sid, "username": sid, "role": "specialist",
                     "password_hash": password, "name": f"Specialist {sid}",
                     "department": "tax", "skills": skills or {"tax": 1}, "disabled": False,
                     "created_at": now}
                    for sid in accounts.specialists])
                await conn.execute(auth_tokens.insert(), [
                    {"token_hash": token_hash(tok), "user_id": sid, "created_at": now,
                     "expires_at": now + TOKEN_TTL}
                    for sid, tok in accounts.specialists.items()])
    finally:
        await engine.dispose()
    return accounts
