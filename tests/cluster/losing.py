"""A Redis connection that loses a script's reply after the script ran (issue 16: Redis
restarted, or a connection was cut, under a busy day), and the desk of one node whose
router reaches a real Redis through it (the fixtures are registered by the conftest)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest
from redis.asyncio import Redis

from server.cluster import keys, recorders
from server.cluster.backends import connect_redis
from server.cluster.router import RedisRouter
from server.storage.db import Database
from signaling.memory import LocalBus
from signaling.recorders import RecordingSetup
from tests.switchboard.conftest import QUEUES, Desk, make_desk


class LosingProxy:
    """TCP between a Redis client and Redis that, once armed, forwards the next script
    call (EVALSHA; of one script only, when `arm` names its SHA) and closes the client's
    connection instead of relaying its answer, as a Redis stopped (SIGTERM) just after
    running it does. A NOSCRIPT answer (the script not loaded yet: nothing ran) is relayed
    and the proxy stays armed."""

    def __init__(self) -> None:
        self.armed = False
        self.only: bytes | None = None  # the SHA of the script whose answer is dropped
        self.lost: list[bytes] = []  # the answers dropped
        self.port = 0
        self._server: asyncio.Server | None = None
        self._serving: set[asyncio.Task[None]] = set()

    def arm(self, sha: str | None = None) -> None:
        self.armed, self.only = True, sha.encode() if sha else None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._serving:
            task.cancel()
        await asyncio.gather(*self._serving, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
                     ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        up_r, up_w = await asyncio.open_connection("127.0.0.1", 6379)
        script_sent = asyncio.Event()
        pumps = [asyncio.ensure_future(self._to_redis(client_r, up_w, script_sent)),
                 asyncio.ensure_future(self._to_client(up_r, client_w, script_sent))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            for writer in (client_w, up_w):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _to_redis(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        script_sent: asyncio.Event) -> None:
        while chunk := await reader.read(65536):
            if (self.armed and b"EVALSHA" in chunk.upper()
                    and (self.only is None or self.only in chunk)):
                script_sent.set()
            writer.write(chunk)
            await writer.drain()

    async def _to_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         script_sent: asyncio.Event) -> None:
        while chunk := await reader.read(65536):
            if script_sent.is_set():
                script_sent.clear()
                if not chunk.startswith(b"-NOSCRIPT"):
                    self.armed = False
                    self.lost.append(chunk)
                    return  # the answer is dropped with the connection
            writer.write(chunk)
            await writer.drain()


class NumberingBus(LocalBus):
    """One node's bus that notes the number of each numbered unit it sends (its message,
    or an empty filler), per principal, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: dict[str, list[int]] = {}

    async def send_numbered(self, principal: str, payloads: Sequence[bytes], *,
                            seq: int | None = None, as_of: int | None = None) -> None:
        if seq is not None:
            self.numbers.setdefault(principal, []).append(seq)
        await super().send_numbered(principal, payloads, seq=seq, as_of=as_of)


async def issued(redis: Redis, prefix: str) -> dict[str, int]:
    """Each principal's last number that a routing transaction took (`keys.sequences`)."""
    return {p: int(n) for p, n in (await redis.hgetall(keys.sequences(prefix))).items()}


@pytest.fixture
async def proxy() -> AsyncIterator[LosingProxy]:
    made = LosingProxy()
    await made.start()
    yield made
    await made.close()


@pytest.fixture
async def lossy_desk(proxy: LosingProxy, database: Database, key_prefix: str,
                     redis: Redis) -> AsyncIterator[Desk]:
    """The switchboard of one node whose router reaches Redis through the proxy, with the
    production client (it retries no command itself), and a `NumberingBus`."""
    del redis  # its fixture deletes the prefix's keys afterwards
    async for made in _lossy(proxy, database, key_prefix, recording=False):
        yield made


@pytest.fixture
async def lossy_recorded_desk(proxy: LosingProxy, database: Database, key_prefix: str,
                              redis: Redis) -> AsyncIterator[Desk]:
    """As `lossy_desk`, recording on: the recorder pool (Redis) behind the same proxy."""
    del redis
    async for made in _lossy(proxy, database, key_prefix, recording=True):
        yield made


async def _lossy(proxy: LosingProxy, database: Database, key_prefix: str, *, recording: bool
                 ) -> AsyncIterator[Desk]:
    client = connect_redis(f"redis://127.0.0.1:{proxy.port}/0", key_prefix)
    router = RedisRouter(client, key_prefix, QUEUES)
    await router.start()
    setup = RecordingSetup(pool=recorders.RedisRecorderPool(client, key_prefix)) \
        if recording else None
    async for made in make_desk(database, router=router, bus=NumberingBus(), recording=setup):
        yield made
    await client.aclose()
