"""The processes of a bench day, each of which a fault can kill and start again.

A private `redis-server` (AOF, on a free port: the shared one on 6379 is never
touched), a fresh PostgreSQL database (dropped at the end), `vwin serve` nodes
and `vwin recorder` processes. `--nodes 1` is the embedded set-up: one node,
memory routing, SQLite. Only the PIDs started here are ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, ServeProcess, free_port, server_toml, stop_process, wait_healthy
from bench.pg import create_database, drop_database, pg_admin

START_TIMEOUT_S = 240.0  # a cold start (imports, migrations) on a 2-core machine at load 40+


def _env(**extra: str) -> dict[str, str]:
    """The bench's own environment: no VWIN_ setting of the caller leaks into a child."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VWIN_")}
    return {**clean, "PYTHONUNBUFFERED": "1", **extra}


def _kill9(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


class RedisServer:
    """`redis-server` with an append-only file fsynced on every write, in `work`."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "redis"
        self.dir.mkdir()
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with (self.dir / "redis.log").open("ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "always",
                 "--save", ""], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {self.dir / 'redis.log'}")
            time.sleep(0.05)

    def restart(self) -> None:
        """SIGTERM (the AOF is complete), then the same port and directory again."""
        stop_process(self.proc)
        self.start()

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class PgDatabase:
    """A database made for one bench day; the storm and the drop touch only it."""

    name: str
    url: str

    @classmethod
    async def create(cls) -> PgDatabase:
        return cls(*await create_database("vwin_day", hex_chars=12))

    async def storm(self) -> int:
        """Every server connection to this database killed from the server side."""
        admin, _ = await pg_admin()
        try:
            rows = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()", self.name)
        finally:
            await admin.close()
        return len(rows)

    async def drop(self) -> None:
        await drop_database(self.name)


class Node(ServeProcess):
    """One `vwin serve`; killed with SIGKILL and started again on the same port."""

    def __init__(self, work: Path, name: str, settings: str) -> None:
        super().__init__(work / f"{name}.toml")
        self.name = name
        self.log = work / f"{name}.log"
        self.config.write_text(server_toml(self.port, name) + settings)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.spawn(ROOT, out, _env())

    async def serving(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until `/healthz` answers 200 (a node without its own recorder: once one joined)."""
        await wait_healthy(self.url, self.proc, self.name, self.tail, timeout)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill9(self) -> None:
        _kill9(self.proc)

    def stop(self) -> None:
        stop_process(self.proc)


class Recorder:
    """One `vwin recorder` process connected to one node."""

    def __init__(self, work: Path, name: str, token: str, recordings: Path,
                 capacity: int) -> None:
        self.name, self.token, self.recordings, self.capacity = name, token, recordings, capacity
        self.log = work / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, node: Node, others: Sequence[Node] = ()) -> None:
        """Joined to `node`, and to the `others` in turn when it is lost."""
        urls = [arg for n in (node, *others) for arg in ("--url", f"ws://127.0.0.1:{n.port}/ws")]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "recorder", *urls,
                 "--capacity", str(self.capacity)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                env=_env(VWIN_RECORDING_TOKEN=self.token,
                         VWIN_RECORDING_DIR=str(self.recordings)))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        _kill9(self.proc)

    def stop(self) -> None:
        stop_process(self.proc)
