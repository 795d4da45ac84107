"""`vwin recorder ...` and `vwin recording ...`: run a recorder, manage its credential,
verify the recordings on disk against their manifests."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
from pathlib import Path
from typing import Any

from server.auth import token_hash
from server.config import Settings
from server.storage.db import open_database
from server.storage.errors import StorageError

from .embedded import PARENT_ENV, PARENT_POLL_S, TOKEN_ENV, local_url, new_recorder_token


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `recorder` and `recording` to the `vwin` parser."""
    rec = sub.add_parser("recorder", parents=[common],
                         help="run a recorder (joins the server over /ws), or manage one")
    rec.add_argument("--url", action="append",
                     help="signalling URL (default: ws://[server] host:port/ws); repeat it "
                          "for each node: a lost node's recorder joins the next at once")
    rec.add_argument("--token", help=f"recorder token (default: ${TOKEN_ENV} or "
                                     "[recording] token)")
    rec.add_argument("--capacity", type=int, help="sessions at once (default [recording])")
    rec.set_defaults(func=recorder)
    rec_sub = rec.add_subparsers(dest="recorder_command")
    add = rec_sub.add_parser("add", parents=[common], help="make a recorder credential")
    add.add_argument("name")
    add.set_defaults(func=recorder_add)
    revoke = rec_sub.add_parser("revoke", parents=[common], help="disable a recorder credential")
    revoke.add_argument("name")
    revoke.set_defaults(func=recorder_revoke)
    recording = sub.add_parser("recording", help="recordings on disk")
    recording_sub = recording.add_subparsers(dest="recording_command", required=True)
    verify = recording_sub.add_parser("verify", parents=[common],
                                      help="re-hash every recording and captured document")
    verify.set_defaults(func=recording_verify)


async def recorder(args: argparse.Namespace, settings: Settings) -> int:
    """Run until SIGTERM/SIGINT, then close the recordings and report them."""
    from recorder import memwatch
    from recorder.service import RecorderService
    from recorder.warmup import warm_up

    token = args.token or os.environ.get(TOKEN_ENV) or settings.recording.token
    if not token:
        print(f"vwin: a recorder needs a token (--token, ${TOKEN_ENV} or [recording] token; "
              "make one with `vwin recorder add NAME`)", file=sys.stderr)
        return 2
    capacity = args.capacity if args.capacity is not None else settings.recording.capacity
    if capacity < 1:
        print("vwin: --capacity must be at least 1", file=sys.stderr)
        return 2
    service = RecorderService(args.url or [local_url(settings)], token,
                              Path(settings.recording.dir), capacity)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    parent = os.environ.get(PARENT_ENV)
    watch = loop.create_task(_follow_parent(int(parent), stop)) if parent else None
    memory = memwatch.start()  # debug only, off unless VIRTUAL_WINDOW_MEMWATCH is set
    await warm_up()  # what the first call would load, loaded now (recorder.warmup)
    gc.collect()  # start-up's garbage goes; the rest is left out of later full collections
    gc.freeze()  # (a call's cycles are collected when it ends: recorder.heap)
    await service.run(stop)
    for task in (watch, memory):
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return 0


async def _follow_parent(pid: int, stop: asyncio.Event) -> None:
    """An embedded recorder ends with the `vwin serve` that started it, even a killed one."""
    while not stop.is_set():
        if os.getppid() != pid:
            stop.set()
            return
        await asyncio.sleep(PARENT_POLL_S)


async def recorder_add(args: argparse.Namespace, settings: Settings) -> int:
    token = new_recorder_token()
    async with open_database(settings.storage.url) as db:
        try:
            await db.add_recorder(args.name, token_hash(token))
        except StorageError as exc:
            print(f"vwin: {exc}", file=sys.stderr)
            return 1
    print(f"added recorder {args.name}; its token (shown only now; run "
          f"`vwin recorder --token TOKEN` or set {TOKEN_ENV}):")
    print(token)
    return 0


async def recorder_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async with open_database(settings.storage.url) as db:
        revoked = await db.revoke_recorder(args.name)
    if not revoked:
        print(f"vwin: no active recorder {args.name}", file=sys.stderr)
        return 1
    print(f"recorder {args.name} revoked; it cannot connect again")
    return 0


async def recording_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 if every recording matches its manifest and every captured document its
    stored SHA-256, 1 if any is missing or altered."""
    from .catalog import verify, verify_documents

    directory = Path(settings.recording.dir)
    async with open_database(settings.storage.url) as db:
        findings = await verify(db, directory)
        documents = await verify_documents(db, directory)
    lines = [(f.problem, f"{f.recording.id} session {f.recording.session_id} "
                         f"{f.recording.participant_id} segment {f.recording.segment} "
                         f"{f.recording.path}") for f in findings]
    lines += [(d.problem, f"{d.document.id} session {d.document.session_id} document "
                          f"{d.document.path}") for d in documents]
    for problem, what in lines:
        word, _, detail = (problem or "ok").partition(" ")
        status = word if problem is None else word.upper()
        with contextlib.suppress(BrokenPipeError):
            print(f"{status:<8} {what}{' ' + detail if detail else ''}")
    bad = sum(1 for problem, _ in lines if problem is not None)
    print(f"{len(findings)} recording(s) and {len(documents)} document(s) checked, {bad} "
          "missing or altered", file=sys.stderr if bad else sys.stdout)
    return 1 if bad else 0
