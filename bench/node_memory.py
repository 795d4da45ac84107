"""What a node keeps per call cycle, reconnect and hand-off: its memory after N and 2N.

Two nodes (`vwin serve`'s app, Redis routing) or one (memory routing) in this process,
on a throw-away PostgreSQL database or a temporary SQLite file; kiosks start on node A,
desks are on node B (every step of a call crosses nodes). Lanes run concurrently, each a
kiosk that plays visits one after another:
- `call`: request, answered, candidates relayed both ways, chat, hung up;
- `drop`: as `call`, but the kiosk's socket is cut while connected and it resumes on
  the other node with its resume token (it stays there for its next visits);
- `handoff`: the waiting call handed over to a phone on the other node, answered there;
- `cancel`: the kiosk gives up while it rings.
Desks answer whatever they are offered (after 50 ms), wrap up, are available again.

After `--warm` visits, tracemalloc's traced memory (`--frames 0`: not traced), the
collector's objects and RSS are read after `--cycles` more and after as many again, per
1,000 visits; with tracing, the places that grew in the second round beside their growth
in the first (which also holds caches filling up). Clients and servers share the process:
the places name the frames of this project that led to each allocation. Issue 16's A/B
runs it from /tmp with each tree on PYTHONPATH.

    python -m bench.node_memory [--cycles 300] [--warm 100] [--lanes 4]
        [--backend redis|memory] [--sqlite] [--frames 12] [--idle 0 [--moves 1]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import socket
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.memory_points import Point, report
from bench.pg import create_database, drop_database
from recorder.memwatch import smaps_mb
from server.app import create_app
from server.cluster import reorder
from server.storage.migrate import upgrade
from tests.helpers import add_terminal, make_settings, quick_specialist

KINDS = ("call", "drop", "call", "handoff", "call", "cancel")
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.2 50000 typ host",
             "sdpMid": "0", "sdpMLineIndex": 0}
WAIT_S = 30.0
ANSWER_S = 0.05


@contextlib.asynccontextmanager
async def _timeout(types: tuple[str, ...], dropped: list[dict[str, Any]]) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(WAIT_S):
            yield
    except TimeoutError:
        raise TimeoutError(f"no {types} in {WAIT_S} s; read past: {dropped}") from None


class Line:
    """One socket: its messages queued by type as they come."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, welcome: dict[str, Any]) -> None:
        self.ws, self.welcome = ws, welcome
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.dropped: list[dict[str, Any]] = []  # read past, the latest few (a timeout's)
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str, token: str,
                   resume: str | None = None) -> Line | None:
        """The line, or None when its hello is refused (a ticket whose call went on)."""
        ws = await http.ws_connect(url + "/ws", heartbeat=None)
        hello: dict[str, Any] = {"type": "hello", "token": token}
        if resume:
            hello["resume"] = resume
        await ws.send_str(json.dumps(hello))
        frame = await ws.receive(timeout=WAIT_S)
        welcome = json.loads(frame.data) if frame.type == aiohttp.WSMsgType.TEXT else {}
        if welcome.get("type") != "welcome":  # an error, or closed at once
            print(f"hello refused: {frame.type} {welcome or frame.data}", file=sys.stderr)
            await ws.close()
            return None
        return cls(ws, welcome)

    @classmethod
    async def opened(cls, http: aiohttp.ClientSession, url: str, token: str,
                     resume: str | None = None) -> Line:
        line = await cls.open(http, url, token, resume)
        if line is None:
            raise ConnectionError(f"hello refused at {url}")
        return line

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                await self.inbox.put(json.loads(frame.data))

    async def send(self, msg: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(msg))

    async def recv(self, *types: str, call_id: str | None = None) -> dict[str, Any]:
        """The next message of one of `types` (of call `call_id`); others are dropped."""
        del self.dropped[:-8]
        async with _timeout(types, self.dropped):
            while True:
                msg = await self.inbox.get()
                if msg["type"] in types and call_id in (None, msg.get("call_id")):
                    return msg
                if msg["type"] == "error":
                    raise RuntimeError(f"waiting for {types}: {msg}")
                if msg["type"] not in ("call.position", "queue.status"):
                    self.dropped.append(msg)

    async def close(self, abort: bool = False) -> None:
        sock = self.ws.get_extra_info("socket") if abort else None
        if sock is not None:  # the park's network: the connection is gone, no close frame
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


async def desk(http: aiohttp.ClientSession, url: str, token: str) -> None:
    """A specialist who answers everything offered, wraps up and is available again."""
    line = await Line.opened(http, url, token)
    await line.send({"type": "agent.status", "status": "available"})
    try:
        while True:
            msg = await line.inbox.get()
            if msg["type"] == "call.offered":
                await asyncio.sleep(ANSWER_S)  # a hand-off's phone is quicker
                await line.send({"type": "call.accept", "call_id": msg["call_id"],
                                 "offer": msg.get("offer")})
            elif msg["type"] == "rtc.candidate":
                await line.send({"type": "rtc.candidate", "call_id": msg["call_id"],
                                 "to": msg["from"], "candidate": CANDIDATE})
            elif msg["type"] == "call.ended":
                await line.send({"type": "session.wrapup", "session_id": msg["session_id"],
                                 "outcome": "resolved"})
                await line.send({"type": "agent.wrapup_done"})
            elif msg["type"] == "error":
                print(f"desk: {msg}", file=sys.stderr, flush=True)
            elif msg["type"] == "agent.status" and msg["status"] == "away":
                await line.send({"type": "agent.status", "status": "available"})
    finally:
        await line.close()


class Kiosk:
    def __init__(self, http: aiohttp.ClientSession, urls: list[str], token: str) -> None:
        self.http, self.urls, self.token = http, urls, token
        self.line: Line | None = None
        self.at = 0  # the node its socket is on

    @property
    def other(self) -> str:
        """The other node's URL (the same with one node)."""
        return self.urls[(self.at + 1) % len(self.urls)]

    async def start(self) -> None:
        self.line = await Line.opened(self.http, self.urls[0], self.token)

    async def visit(self, kind: str) -> None:
        line = self.line
        assert line is not None
        await line.send({"type": "call.request", "queue": "tax"})
        queued = await line.recv("call.queued")
        call_id = queued["call_id"]
        if kind == "cancel":
            await line.send({"type": "call.cancel", "call_id": call_id})
            over = await line.recv("call.ended", "call.connected", call_id=call_id)
            if over["type"] == "call.connected":  # answered before the cancel came
                await self._talk(line, over)
            return
        if kind == "handoff":
            await self._handoff(line, call_id)
            return
        connected = await line.recv("call.connected", call_id=call_id)
        if kind == "drop":
            await line.close(abort=True)
            line = self.line = await Line.opened(self.http, self.other, self.token,
                                                 line.welcome["resume"])
            self.at = (self.at + 1) % len(self.urls)
            connected = await line.recv("call.connected", call_id=call_id)
        await self._talk(line, connected)

    async def _talk(self, line: Line, connected: dict[str, Any]) -> None:
        call_id = connected["call_id"]
        peer = next(p["id"] for p in connected["participants"] if p["id"] != connected["you"])
        for _ in range(4):
            await line.send({"type": "rtc.candidate", "call_id": call_id, "to": peer,
                             "candidate": CANDIDATE})
            await line.recv("rtc.candidate", call_id=call_id)
        await line.send({"type": "chat.send", "call_id": call_id, "text": "你好"})
        await line.recv("chat.message", call_id=call_id)
        await line.send({"type": "call.hangup", "call_id": call_id})
        await line.recv("call.ended", call_id=call_id)

    async def _handoff(self, line: Line, call_id: str) -> None:
        await line.send({"type": "call.handoff", "call_id": call_id})
        ready = await line.recv("call.handoff_ready", "call.connected", "error",
                                call_id=call_id)
        if ready["type"] != "call.handoff_ready":  # offered before the visitor could go
            if ready["type"] == "error":
                ready = await line.recv("call.connected", call_id=call_id)
            await self._talk(line, ready)
            return
        ticket = str(ready["url"]).removeprefix("/m/")
        phone = await Line.open(self.http, self.other, ticket)
        if phone is None:  # answered meanwhile: the kiosk has it (or it is over)
            over = await line.recv("call.connected", "call.ended", call_id=call_id)
            if over["type"] == "call.connected":
                await self._talk(line, over)
            return
        try:
            await line.recv("call.handed_off", call_id=call_id)
            await self._talk(phone, await phone.recv("call.connected", call_id=call_id))
        finally:
            await phone.close()

    async def close(self) -> None:
        if self.line is not None:
            await self.line.close()


async def lane(kiosk: Kiosk, visits: int, offset: int) -> None:
    for n in range(visits):
        try:
            await kiosk.visit(KINDS[(n + offset) % len(KINDS)])
        except (RuntimeError, TimeoutError) as exc:  # a refusal, a race: a new presence
            print(f"visit failed: {exc}", file=sys.stderr, flush=True)
            await kiosk.close()
            kiosk.line = await Line.opened(kiosk.http, kiosk.urls[kiosk.at], kiosk.token)


@contextlib.asynccontextmanager
async def nodes(backend: str, pg: bool
                ) -> AsyncIterator[tuple[list[web.Application], list[str]]]:
    """Started apps (two on Redis, one on memory routing) on one fresh database."""
    with tempfile.TemporaryDirectory() as work:
        name = ""
        if pg:
            name, url = await create_database("vwin_bench_nodemem", 8)
        else:
            url = f"sqlite+aiosqlite:///{Path(work) / 'vwin.db'}"
        prefix = f"vwbench{uuid.uuid4().hex[:10]}"
        try:
            await upgrade(url)
            count = 2 if backend == "redis" else 1
            many = 10**6  # idle kiosks (--idle) do not ping; bench.node_moves moves them
            apps = [create_app(make_settings(
                url, backend, server={"node_id": f"n{i}", "rate_per_s": 1e6, "rate_burst": many,
                                      "idle_timeout_s": many},
                routing={"key_prefix": prefix, "rebalance_interval_s": 0} if count > 1 else {},
                limits={"ws_per_address": many, "unauthenticated_per_address": many}))
                for i in range(count)]
            servers = [TestServer(app) for app in apps]
            for server in servers:
                await server.start_server()
            try:
                yield apps, [str(s.make_url("")).rstrip("/") for s in servers]
            finally:
                for server in servers:
                    await server.close()
        finally:
            if pg:
                await drop_database(name)
            if backend == "redis":
                from redis.asyncio import Redis
                client = Redis.from_url("redis://127.0.0.1:6379/0")
                keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
                for i in range(0, len(keys), 500):
                    await client.delete(*keys[i:i + 500])
                await client.aclose()


async def run(cycles: int, warm: int, lanes: int, backend: str, pg: bool,
              frames: int, idle: int = 0, moves: float = 0.0) -> str:
    from bench.node_moves import Idle, held, mover  # (it reads this module's Line)
    async with nodes(backend, pg) as (apps, urls):
        desk_tokens = [await quick_specialist(apps[-1], f"desk{i}", {"tax": 1})
                       for i in range(lanes)]
        kiosk_tokens = [await add_terminal(apps[0], f"K{i:03d}") for i in range(lanes)]
        idle_ids = [f"I{i:04d}" for i in range(idle)]
        idle_tokens = [await add_terminal(apps[0], i) for i in idle_ids]
        rng = random.Random(16)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            desks = [asyncio.create_task(desk(http, urls[-1], t)) for t in desk_tokens]
            kiosks = [Kiosk(http, urls, t) for t in kiosk_tokens]
            idles = [Idle(http, urls, t, i) for t, i in zip(idle_tokens, idle_ids, strict=True)]
            for start in [k.start for k in kiosks] + [i.start for i in idles]:
                await start()
            points: list[Point] = []
            done = 0
            for rounds, visits in enumerate((warm, cycles, cycles)):
                began = time.perf_counter()
                per_lane = max(1, visits // lanes) if lanes else 0  # 0: moves alone
                await asyncio.gather(mover(idles, apps, round(moves * visits), rng),
                                     *(lane(k, per_lane, i + done) for i, k in enumerate(kiosks)))
                done += per_lane * lanes or visits
                print(f"{per_lane * lanes or visits} visits in {time.perf_counter() - began:.1f} s;"
                      f" {held(apps)}", file=sys.stderr, flush=True)
                await asyncio.sleep(1.0)  # timers and flushes of the last steps
                gc.collect()
                if rounds == 0 and frames:
                    tracemalloc.start(frames)
                snapshot = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)]) if frames else None
                points.append(Point(done, sum(smaps_mb().values()), len(gc.get_objects()),
                                    snapshot))
            for close in [k.close for k in kiosks] + [i.close for i in idles]:
                await close()
            for d in desks:
                d.cancel()
            await asyncio.gather(*desks, return_exceptions=True)
    tracemalloc.stop()
    title = (f"Node memory per 1,000 visits ({backend} routing, "
             f"{'PostgreSQL' if pg else 'SQLite'} log, {lanes} lanes, "
             f"{f'{idle} idle kiosks moved {moves:g} a visit, ' if idle else ''}"
             f"{'traced' if frames else 'not traced'}; the code of "
             f"{Path(reorder.__file__).parents[2]}), load average {os.getloadavg()[0]:.1f}")
    return report(title, points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--backend", choices=("redis", "memory"), default="redis")
    parser.add_argument("--sqlite", action="store_true", help="SQLite log, not PostgreSQL")
    parser.add_argument("--idle", type=int, default=0, help="kiosks moved (bench.node_moves)")
    parser.add_argument("--moves", type=float, default=1.0, help="moves a visit (--idle)")
    parser.add_argument("--frames", type=int, default=12,
                        help="tracemalloc's depth; 0: not traced (RSS and objects only)")
    args = parser.parse_args()
    print(asyncio.run(run(args.cycles, args.warm, args.lanes, args.backend,
                          not args.sqlite, args.frames, args.idle, args.moves)))


if __name__ == "__main__":
    main()
