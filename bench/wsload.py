"""A lean WebSocket client for load generation: thousands of kiosks in a few processes.

aiohttp's client costs the load process more CPU per connection than the server spends
answering it (happy eyeballs, a request object, a response parser per handshake), so at
10,000 terminals the load generator, not the server, set the pace of a reconnect storm.
This client is one `asyncio.Protocol` per socket: the upgrade request written at once,
the `101` answer and the server's (unmasked) frames parsed by hand, client frames masked
as RFC 6455 requires. It speaks just what a kiosk's signalling needs: text frames, ping,
close. Not for production: the server is what is being measured.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from urllib.parse import urlsplit

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final frame from a client: masked with a fresh random key."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big") if n else 0
    masked = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big") if n else b""
    return head + mask + masked


class WsClient(asyncio.Protocol):
    """One WebSocket; `texts` receives text payloads, `closed` resolves with the close code."""

    def __init__(self, host: str, path: str) -> None:
        self.host, self.path = host, path
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int] = loop.create_future()
        self.texts: asyncio.Queue[str] = asyncio.Queue()

    @classmethod
    async def connect(cls, url: str, connect_timeout: float, upgrade_timeout: float) -> WsClient:
        """`connect_timeout` for TCP (the SYN retries of a full accept queue), then
        `upgrade_timeout` for the `101`: like aiohttp's `sock_connect` and a browser, a
        client that got in waits for its answer instead of adding to the storm."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(connect_timeout):
            _, client = await loop.create_connection(lambda: cls(f"{host}:{port}", parts.path),
                                                     host, port)
        try:
            async with asyncio.timeout(upgrade_timeout):
                await client.opened
        except BaseException:
            client.close()
            raise
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.buffer[:end].split(b"\r\n", 1)[0]
            self.buffer = self.buffer[end + 4:]
            if b" 101 " not in status:
                self._finish(int(status.split()[1]) if len(status.split()) > 1 else 0)
                return
            self.upgraded = True
            if self.opened.done():  # the caller gave up waiting (timeout): hang up
                self._finish(1006)
                return
            self.opened.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
            start = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, start = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, start = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < start + n:
                break
            payload, buf = buf[start:start + n], buf[start + n:]
            if opcode == TEXT:
                self.texts.put_nowait(payload.decode())
            elif opcode == PING:
                self.send(PONG, payload)
            elif opcode == CLOSE:
                code = struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005
                self.send(CLOSE, payload[:2])  # answer the close, then hang up
                self._finish(code)
                break
        self.buffer = buf

    def send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))

    def send_text(self, text: str) -> None:
        self.send(TEXT, text.encode())

    def close(self) -> None:
        if self.upgraded:
            self.send(CLOSE, struct.pack("!H", 1000))
        self._finish(1000)

    def _finish(self, code: int) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"handshake refused: {code}"))
            self.opened.exception()  # retrieved: nobody may be waiting any more
        if not self.closed.done():
            self.closed.set_result(code)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(1006)
