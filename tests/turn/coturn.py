"""Debian's coturn for tests: the configuration `vwin turn config` prints, on free ports.

On one machine every address is loopback, so the server runs with
`allow-loopback-peers` and names the test's host as the recorder host (the
generated `denied-peer-ip` ranges still include 127.0.0.0/8).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings, TurnSettings
from server.turn import check_allocation
from server.turnserver import turnserver_conf
from tests.helpers import make_settings

SECRET = "test-turn-secret"
RELAY_PORTS = 40  # each relay-only peer holds one or two allocations


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both TCP and UDP on `host` (TURN listens on both)."""
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class Coturn:
    """One `turnserver` process; `settings()` are the `[turn]` settings that match it."""

    def __init__(self, directory: Path, host: str = "127.0.0.1",
                 recorder_hosts: list[str] | None = None, ttl_s: int = 600,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.host = host
        self.port = free_port(host)
        self.tls = tls  # (certificate, key): coturn also listens for TURN over TLS
        low = random.randrange(20000, 30000 - RELAY_PORTS)
        self.turn: dict[str, Any] = {
            "secret": SECRET, "ttl_s": ttl_s, "realm": "vwin-test", "listen_ip": host,
            "port": self.port, "tls_port": free_port(host) if tls else 5349,
            "min_port": low, "max_port": low + RELAY_PORTS,
            "recorder_hosts": recorder_hosts or [host], "allow_loopback": host == "127.0.0.1",
            "urls": [self.url("udp"), self.url("tcp")],
        }
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, transport: str) -> str:
        """`udp`, `tcp`, or `tls` (a `turns:` URL: TURN over TLS over TCP)."""
        if transport == "tls":
            return f"turns:{self.host}:{self.turn['tls_port']}?transport=tcp"
        return f"turn:{self.host}:{self.port}?transport={transport}"

    def settings(self, **turn: Any) -> Settings:
        return make_settings(f"sqlite+aiosqlite:///{self.directory / 'vwin.db'}",
                             turn={**self.turn, **turn})

    def start(self) -> None:
        conf = self.directory / "turnserver.conf"
        settings = self.settings()  # the app's stay plain HTTP: TLS is for coturn only
        if self.tls is not None:
            settings.server.tls_cert, settings.server.tls_key = map(str, self.tls)
        conf.write_text(turnserver_conf(settings))
        self.log = (self.directory / "turnserver.log").open("wb")
        self.process = subprocess.Popen(
            ["turnserver", "-c", str(conf), "--pidfile", str(self.directory / "turn.pid"),
             "--userdb", str(self.directory / "turndb")],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:  # in a thread of its own: a browser test's thread already runs Playwright's loop
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, self._ready()).result()
        except BaseException:
            self.stop()
            raise

    async def _ready(self) -> None:
        """Up once a relay can be allocated over TCP (UDP answers are then sure too)."""
        turn = TurnSettings(**self.turn)
        for _ in range(100):
            assert self.process is not None and self.process.poll() is None, self.log_text()
            with contextlib.suppress(ConnectionError):
                await check_allocation(turn, self.url("tcp"), timeout=1.0)
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"coturn did not answer: {self.log_text()}")

    def log_text(self) -> str:
        path = self.directory / "turnserver.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    if shutil.which("turnserver") is None:
        pytest.fail("turnserver is missing: apt-get install -y coturn (make install-test)")
    server = Coturn(tmp_path)
    server.start()
    yield server
    server.stop()
