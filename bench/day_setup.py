"""The bench day's service: accounts in bulk, node settings, nodes and recorders started.

Accounts are inserted with the storage's own table definitions in one
transaction per table (one durable `add_terminal` a kiosk would take minutes
for 2,000 on SQLite), through the async engine so that both SQLite and
PostgreSQL take the same path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine

from bench.day_hours import Schedule, write_calendar
from bench.day_plan import PROBE_DESKS, PROBE_KIOSKS, PROBE_QUEUE, probe_toml, queue_toml, staff
from bench.stack import Node, PgDatabase, Recorder, RedisServer
from server.auth import hash_password, new_terminal_token, token_hash
from server.recording.embedded import new_recorder_token
from server.storage import Database
from server.storage.schema import auth_tokens, sites, terminals, users

SITE_ID = "day-park"
MANAGER = ("day-manager", "day-manager-pass")
RESUME_GRACE_S = 10.0  # real seconds: a kiosk on a flaky network comes back well within
RECORDER_CAPACITY = 400  # the sampled calls of a peak, on one recorder after the other dies
TOKEN_TTL = dt.timedelta(days=1)


@dataclass
class Accounts:
    terminals: list[tuple[str, str]] = field(default_factory=list)  # (id, device token)
    specialists: list[tuple[str, str, str]] = field(default_factory=list)  # (id, token, dept)
    probe_terminals: list[tuple[str, str]] = field(default_factory=list)  # bench.day_probe's
    probe_specialists: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Service:
    """Everything the day runs on; `stop()` ends only what was started here."""

    work: Path
    db_url: str
    nodes: list[Node]
    recordings: Path
    redis: RedisServer | None = None
    pg: PgDatabase | None = None
    recorders: list[Recorder] = field(default_factory=list)
    retired: list[Recorder] = field(default_factory=list)
    keep_db: bool = False  # `--keep`: the PostgreSQL database is left for the inquiry

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    async def add_recorder(self, name: str, node: Node) -> Recorder:
        db = await Database.connect(self.db_url)
        try:
            token = new_recorder_token()
            await db.add_recorder(name, token_hash(token))
        finally:
            await db.close()
        recorder = Recorder(self.work, name, token, self.recordings, RECORDER_CAPACITY)
        recorder.start(node, [n for n in self.nodes if n is not node])
        self.recorders.append(recorder)
        return recorder

    async def stop(self) -> None:
        for recorder in (*self.recorders, *self.retired):
            recorder.stop()
        for node in self.nodes:
            node.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.pg is not None and self.keep_db:
            print(f"database (kept, drop it when done): {self.pg.url}", flush=True)
        elif self.pg is not None:
            await self.pg.drop()


def settings(db_url: str, redis_url: str | None, recordings: Path, speed: float,
             schedule: Schedule, calendar: Path) -> str:
    """A node's configuration after its [server] host, port and node id."""
    routing = (f'[routing]\nbackend = "redis"\nredis_url = "{redis_url}"\nkey_prefix = "day"\n'
               if redis_url else '[routing]\nbackend = "memory"\n')
    return (f"resume_grace_s = {RESUME_GRACE_S}\nrate_per_s = 100000\nrate_burst = 100000\n"
            "drain_timeout_s = 5\n"
            # every simulated kiosk connects from 127.0.0.1: lift the per-address caps
            "[limits]\nws_per_address = 1000000\nunauthenticated_per_address = 1000000\n"
            f'[storage]\nurl = "{db_url}"\n{routing}'
            f'[recording]\ndir = "{recordings}"\nlocal_recorder = false\n'
            + schedule.toml(calendar) + queue_toml(speed, schedule.queue_keys())
            + probe_toml(speed))


async def provision(db_url: str, n_terminals: int, n_specialists: int) -> Accounts:
    db = await Database.connect(db_url)
    try:
        await db.upgrade()
        await db.add_user(MANAGER[0], "manager", hash_password(MANAGER[1]), "Day manager")
    finally:
        await db.close()
    now = dt.datetime.now(dt.UTC)
    accounts = Accounts(
        terminals=[(f"K{i:05d}", new_terminal_token()) for i in range(n_terminals)],
        specialists=[(sid, secrets.token_urlsafe(32), dept)
                     for sid, dept, _ in staff(n_specialists)],
        probe_terminals=[(f"P{i:03d}", new_terminal_token()) for i in range(PROBE_KIOSKS)],
        probe_specialists=[(f"probe{i:02d}", secrets.token_urlsafe(32), "tax")
                           for i in range(PROBE_DESKS)])
    skills = {sid: s for sid, _, s in staff(n_specialists)}
    skills.update({sid: {PROBE_QUEUE: 1} for sid, _, _ in accounts.probe_specialists})
    kiosks = accounts.terminals + accounts.probe_terminals
    desks = accounts.specialists + accounts.probe_specialists
    password = hash_password("day-specialist-pass")
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sites.insert().values(id=SITE_ID, name="嘉定新城园区",
                                                     kind="park", created_at=now))
            await conn.execute(terminals.insert(), [
                {"id": tid, "site_id": SITE_ID, "name": f"Kiosk {tid}",
                 "token_hash": token_hash(tok), "created_at": now}
                for tid, tok in kiosks])
            await conn.execute(users.insert(), [
                {"id": sid, "username": sid, "role": "specialist", "password_hash": password,
                 "name": f"Specialist {sid}", "department": dept, "skills": skills[sid],
                 "disabled": False, "created_at": now}
                for sid, _, dept in desks])
            await conn.execute(auth_tokens.insert(), [
                {"token_hash": token_hash(tok), "user_id": sid, "created_at": now,
                 "expires_at": now + TOKEN_TTL} for sid, tok, _ in desks])
    finally:
        await engine.dispose()
    return accounts


async def start(work: Path, nodes: int, speed: float, terminals: int, specialists: int,
                schedule: Schedule, keep_db: bool = False) -> tuple[Service, Accounts]:
    """Two nodes on a private Redis and a fresh PostgreSQL database (left in place with
    `keep_db`), or one embedded node (memory routing, SQLite); one `vwin recorder` per
    node."""
    recordings = work / "recordings"
    recordings.mkdir()
    redis: RedisServer | None = None
    pg: PgDatabase | None = None
    if nodes > 1:
        redis = RedisServer(work)
        redis.start()
        pg = await PgDatabase.create()
        db_url = pg.url
    else:
        db_url = f"sqlite+aiosqlite:///{work / 'day.db'}"
    service = Service(work, db_url, [], recordings, redis, pg, keep_db=keep_db)
    try:
        accounts = await provision(db_url, terminals, specialists)
        days = [schedule.local(schedule.t0).date(), schedule.local(schedule.slot).date()]
        text = settings(db_url, redis.url if redis else None, recordings, speed, schedule,
                        write_calendar(work, days))
        service.nodes = [Node(work, f"node{i + 1}", text) for i in range(nodes)]
        for node in service.nodes:
            node.start()
        for i, node in enumerate(service.nodes):
            await service.add_recorder(f"rec{i + 1}", node)
        await asyncio.gather(*(node.serving() for node in service.nodes))
    except BaseException:
        await service.stop()
        raise
    return service, accounts
