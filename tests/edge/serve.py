"""A real `vwin serve` process on a free port, with a self-signed certificate when asked."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.auth import hash_password, new_terminal_token, token_hash
from server.storage.db import open_database
from tests.turn.coturn import free_port

ROOT = Path(__file__).resolve().parents[2]
MANAGER = ("boss", "manager-pass")


def self_signed(directory: Path, valid_days: float = 1) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 (and its key), as PEM files; a negative
    `valid_days` makes one that expired that long ago."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    until = now + dt.timedelta(days=valid_days)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(min(now, until) - dt.timedelta(minutes=5))
            .not_valid_after(until)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def client_tls(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


class VwinServe:
    """`vwin serve --config FILE`; `terminal_token` is T1's device token."""

    def __init__(self, directory: Path, extra: str = "", recording: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.db_url = f"sqlite+aiosqlite:///{directory / 'vwin.db'}"
        self.config = directory / "vwin.toml"
        self.config.write_text(f"""
[server]
host = "127.0.0.1"
port = {self.port}
drain_timeout_s = 2
{extra}
[storage]
url = "{self.db_url}"

[recording]
enabled = {"true" if recording else "false"}
dir = "{directory / 'recordings'}"
""")
        self.log = directory / "vwin.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.terminal_token = ""

    async def provision(self) -> None:
        self.terminal_token = new_terminal_token()
        async with open_database(self.db_url) as db:
            await db.add_user(MANAGER[0], "manager", hash_password(MANAGER[1]), "Boss", None, {})
            await db.add_site("park1", "Park One", "park")
            await db.add_terminal("T1", "park1", "Kiosk One", token_hash(self.terminal_token))

    async def start(self, url: str, ssl_context: ssl.SSLContext | bool = True) -> None:
        await self.provision()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--config", str(self.config)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                env={**{k: v for k, v in os.environ.items() if not k.startswith("VWIN_")},
                     "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.process.poll() is None, self.output()
                try:
                    async with http.get(url + "/healthz", ssl=ssl_context) as r:
                        if r.status == 200:
                            return
                except (aiohttp.ClientError, OSError):
                    pass
                assert time.monotonic() < deadline, self.output()
                await asyncio.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode
