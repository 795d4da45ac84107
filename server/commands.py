"""What each `vwin` command does; `server.cli` parses the arguments and calls the `func`
it registered with `set_defaults`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from server.auth import hash_password, new_terminal_token, token_hash
from server.config import Settings
from server.passwords import one_time_password
from server.storage.db import Database, open_database
from server.storage.errors import AlreadyExists, StorageError


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the server in the foreground (the one command that is not a coroutine).

    Everything it needs is checked before the URL is printed: a failure is one line on
    stderr and exit 2, never a traceback (server/preflight.py)."""
    from server.app import create_app
    from server.dblock import DatabaseLock
    from server.logs import access_logger
    from server.preflight import (
        LISTEN_BACKLOG,
        StartupError,
        check_files,
        listen,
        lock_database,
        tls,
    )

    loop = asyncio.new_event_loop()  # one loop: a PostgreSQL lock is a connection held open
    lock = DatabaseLock(settings.storage.url)  # held (referenced) until serve returns
    try:
        check_files(settings)
        context = tls(settings)
        sock = listen(settings)
        if settings.routing.backend == "memory":
            loop.run_until_complete(lock_database(settings, lock))
        loop.run_until_complete(_first_run(settings))
    except StartupError as exc:
        print(f"vwin: cannot start: {exc}", file=sys.stderr, flush=True)
        loop.close()
        return 2
    app = create_app(settings)
    app.on_startup.append(_freeze_start_up_heap)  # after every cleanup_ctx entry started
    app.cleanup_ctx.append(_memwatch)  # debug only, off unless VIRTUAL_WINDOW_MEMWATCH is set
    host, port = settings.server.host, settings.server.port
    print(
        f"Virtual Window on {'https' if context else 'http'}://{host}:{port}/  (kiosk /kiosk, "
        f"console /console, managers /manage)",
        flush=True,
    )
    web.run_app(
        # the backlog again: asyncio listens on `sock` anew with it (aiohttp's default is 128)
        app, sock=sock, backlog=LISTEN_BACKLOG, print=None,
        shutdown_timeout=settings.server.drain_timeout_s,
        ssl_context=context, access_log_class=access_logger(settings.log), loop=loop,
    )
    del lock
    return 0


async def _freeze_start_up_heap(app: web.Application) -> None:
    """Leave what start-up built (modules, the app, the pools: ~130,000 objects) out of
    the garbage collector's full passes: nothing of it is freed while the server runs, and
    each full pass over it held the event loop 20-70 ms, every frame waiting meanwhile
    (the relay's p99). The collection first: the start-up's garbage is not kept for ever."""
    del app
    gc.collect()
    gc.freeze()


async def _memwatch(app: web.Application) -> AsyncIterator[None]:
    """What the process's memory is made of, logged every `VIRTUAL_WINDOW_MEMWATCH` seconds
    (recorder.memwatch; issue 16's investigations)."""
    from recorder import memwatch

    del app
    task = memwatch.start()
    yield
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _first_run(settings: Settings) -> None:
    """Redis and the database answer; an empty database gets an `admin` manager with a
    random password, printed once."""
    from server.preflight import check_redis, database_error

    await check_redis(settings)
    try:
        await _admin_account(settings)
    except Exception as exc:  # unreachable, refused, no schema: one line
        raise database_error(settings, exc) from None


async def _admin_account(settings: Settings) -> None:
    async with open_database(settings.storage.url) as db:
        if await db.list_users():
            print("Log in at /login with an account made by `vwin user add`.", flush=True)
            return
        password = one_time_password("admin")
        try:
            await db.add_user("admin", "manager", hash_password(password), "Administrator",
                              None, {}, must_change_password=True, actor="vwin serve")
        except AlreadyExists:  # another node starting on the same database made it first
            print("Log in at /login with the `admin` account printed by the node that "
                  "created it.", flush=True)
            return
        print(
            "First start: created manager account `admin` with password "
            f"{password}  (log in at /login and choose a new password; add staff with "
            "`vwin user add`).",
            flush=True,
        )


async def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    db = await Database.connect(settings.storage.url)
    try:
        await db.upgrade()
    finally:
        await db.close()
    print("database is at the newest schema")
    return 0


async def site_add(args: argparse.Namespace, settings: Settings) -> int:
    async with open_database(settings.storage.url) as db:
        try:
            await db.add_site(args.site_id, args.name, args.kind, args.unit)
        except StorageError as exc:
            print(f"vwin: {exc}", file=sys.stderr)
            return 1
    print(f"added site {args.site_id}")
    return 0


async def terminal_add(args: argparse.Namespace, settings: Settings) -> int:
    token = new_terminal_token()
    async with open_database(settings.storage.url) as db:
        try:
            await db.add_terminal(
                args.terminal_id, args.site, args.name or args.terminal_id, token_hash(token)
            )
        except StorageError as exc:
            print(f"vwin: {exc}", file=sys.stderr)
            return 1
    print(
        f"added terminal {args.terminal_id} at site {args.site}; its device token (shown only now):"
    )
    print(token)
    return 0


async def terminal_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async with open_database(settings.storage.url) as db:
        ok = await db.revoke_terminal(args.terminal_id)
    if not ok:
        print(f"vwin: no terminal {args.terminal_id}", file=sys.stderr)
        return 1
    print(
        f"terminal {args.terminal_id} revoked at {dt.datetime.now(dt.UTC).isoformat()}; "
        "a running server disconnects it within seconds"
    )
    return 0


async def audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Walk the audit chain and re-hash the signed forms' PDFs it names: 0 when all are
    intact, 1 naming the first altered or missing entry and every altered or missing PDF."""
    from pathlib import Path

    from sqlalchemy.exc import SQLAlchemyError

    from server.forms.verify import verify_form_files

    db = await Database.connect(settings.storage.url)
    try:
        count, problem = await db.verify_audit(expected_last=args.expected_last)
        forms, altered = await verify_form_files(db, Path(settings.recording.dir))
    except (SQLAlchemyError, StorageError) as exc:
        print(f"vwin: cannot read the audit log: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.close()
    if problem is not None:
        print(f"audit log BROKEN at entry {problem.seq} ({problem.kind}): {problem.message}",
              file=sys.stderr)
    for line in altered:
        print(f"audit log: {line}", file=sys.stderr)
    if problem is not None or altered:
        return 1
    print(f"audit log intact: {count} entries; {forms} signed form(s) match their hashes")
    return 0


async def backup(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from server.backup import BackupError
    from server.backup import backup as copy_out

    try:
        print(await asyncio.to_thread(copy_out, settings, Path(args.dir)))
    except (BackupError, OSError) as exc:
        print(f"vwin: backup failed: {exc}", file=sys.stderr)
        return 1
    return 0


async def restore(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from server.backup import BackupError
    from server.backup import restore as copy_in

    try:
        print(await copy_in(settings, Path(args.dir), args.force))
    except (BackupError, OSError) as exc:
        print(f"vwin: restore failed: {exc}", file=sys.stderr)
        return 1
    return 0


async def doctor(args: argparse.Namespace, settings: Settings) -> int:
    from server.doctor import run

    del args
    return await run(settings)
