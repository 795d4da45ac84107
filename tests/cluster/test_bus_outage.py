"""Two real bus nodes while Redis is away (issue 16's faulted day: a call answered about a
second before Redis restarted, the kiosk's `call.connected` never delivered): a batch
whose publish fails is published again once Redis is back, and a node whose subscription
was lost reads the numbered messages it missed from their principals' lists."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError

from server.cluster import keys
from server.cluster.bus import RedisBus
from server.cluster.publisher import Publisher
from server.cluster.reorder import TAKEN_HOLD_S
from tests.cluster.conftest import REDIS_URL
from tests.cluster.test_bus_order import HOLD_S, Inbox, Unheeded
from tests.cluster.test_failover import OwnRedis

P = "kiosk:lobby"
CAP_S = 30.0  # the production cap: a gap given up within a test is a lost subscription's


async def until(done: Callable[[], bool]) -> None:
    """Wait for a condition that no event signals (a counter of the bus)."""
    async with asyncio.timeout(15):
        while not done():
            await asyncio.sleep(0.02)


class Gate:
    """TCP between a node's Redis client and a real Redis that can be shut (every
    connection cut, new ones refused, as a Redis restarting refuses them) and opened."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.shut = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def close_all(self) -> None:
        self.shut = True
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def aclose(self) -> None:
        self.close_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._pumps:
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        if self.shut:
            writer.close()
            return
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_w}
        for source, sink in ((reader, up_w), (up_r, writer)):
            task = asyncio.ensure_future(self._pump(source, sink))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                    ) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


class Resubscribed(Unheeded):
    def __init__(self) -> None:
        self.again = asyncio.Event()

    def resubscribed(self) -> None:
        self.again.set()


@pytest.fixture
async def gate() -> AsyncIterator[Gate]:
    server = Gate(6379)
    await server.start()
    try:
        yield server
    finally:
        await server.aclose()


class Closable(Inbox):
    """A connection that also records how the bus closed it."""

    def __init__(self) -> None:
        super().__init__()
        self.closed: list[tuple[int, str]] = []

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))
        self.changed.set()


async def two_nodes(url_a: str, url_b: str, prefix: str, presence: Redis,
                    notices_b: Unheeded | None = None, inbox: Inbox | None = None,
                    role: str = "kiosk") -> tuple[RedisBus, RedisBus, Inbox, list[Redis]]:
    """Nodes a and b (b's connection the kiosk's), the kiosk's line waiting for 2."""
    clients = [Redis.from_url(url_a), Redis.from_url(url_b)]
    a = RedisBus(clients[0], prefix, "node-a", Unheeded(), reorder_hold_s=HOLD_S,
                 reorder_cap_s=CAP_S)
    b = RedisBus(clients[1], prefix, "node-b", notices_b or Unheeded(),
                 reorder_hold_s=HOLD_S, reorder_cap_s=CAP_S)
    await a.start()
    await b.start()
    await presence.hset(keys.presence(prefix, P), "node", "node-b")
    await presence.hset(keys.sequences(prefix), P, 1)
    inbox = inbox or Inbox()
    b.attach(P, role, inbox)
    await b.baseline(P)
    await a.send(P, b"hello")  # a knows where the kiosk is
    await inbox.until(lambda: inbox.got == [b"hello"])
    inbox.got.clear()
    return a, b, inbox, clients


async def stop(a: RedisBus, b: RedisBus, clients: list[Redis]) -> None:
    await a.close()
    await b.close()
    for client in clients:
        await client.aclose()


async def test_a_batch_whose_publish_failed_is_published_again_in_order(
        gate: Gate, redis: Redis, key_prefix: str) -> None:
    """a's connection to Redis is cut while it publishes `call.connected` (2) and a relayed
    frame after it: once Redis answers again both reach the kiosk on b, in that order."""
    a, b, inbox, clients = await two_nodes(f"redis://127.0.0.1:{gate.port}/0", REDIS_URL,
                                           key_prefix, redis)
    try:
        gate.close_all()
        await redis.hset(keys.sequences(key_prefix), P, 2)  # the accept took 2
        await a.send_numbered(P, [b"call.connected"], seq=2)
        await a.send(P, b"rtc.answer")
        await until(lambda: a.publisher.failures > 0)  # tried, kept
        gate.shut = False
        await inbox.until(lambda: len(inbox.got) == 2)
        assert inbox.got == [b"call.connected", b"rtc.answer"]
        await a.send_numbered(P, [b"call.ended"], seq=3)
        await inbox.until(lambda: len(inbox.got) == 3)
        assert inbox.got[-1] == b"call.ended"
        assert (a.publisher.dropped, b.reorder.gaps, b.reorder.late) == (0, 0, 0)
    finally:
        await stop(a, b, clients)


async def test_a_batch_is_dropped_once_kept_long_enough(
        gate: Gate, redis: Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis away for longer than a message is kept: it is dropped (counted), the messages
    sent after Redis is back go as before."""
    monkeypatch.setattr(keys, "PUBLISH_KEEP_S", 0.3)
    a, b, inbox, clients = await two_nodes(f"redis://127.0.0.1:{gate.port}/0", REDIS_URL,
                                           key_prefix, redis)
    try:
        gate.close_all()
        await a.send(P, b"rtc.offer")
        await until(lambda: a.publisher.dropped == 1)
        gate.shut = False
        await a.send(P, b"rtc.candidate")
        await inbox.until(lambda: len(inbox.got) == 1)
        assert inbox.got == [b"rtc.candidate"]
    finally:
        await stop(a, b, clients)


async def test_numbered_messages_missed_by_a_lost_subscription_are_read_back(
        gate: Gate, redis: Redis, key_prefix: str) -> None:
    """b's connections to Redis are cut (its subscription lost) while a publishes the
    kiosk's `call.connected` (2): b reads it from the kiosk's list once subscribed again
    and delivers it in order, not given up; heard once, though it is also in the list
    when 3 comes."""
    notices = Resubscribed()
    a, b, inbox, clients = await two_nodes(REDIS_URL, f"redis://127.0.0.1:{gate.port}/0",
                                           key_prefix, redis, notices)
    try:
        notices.again.clear()
        gate.close_all()
        await redis.hset(keys.sequences(key_prefix), P, 2)
        await a.send_numbered(P, [b"call.connected"], seq=2)
        await a.send(P, b"rtc.answer")  # relayed frames published meanwhile are lost
        fill = keys.fill(key_prefix, P)
        async with asyncio.timeout(15):  # published (the list is written before the PUBLISH)
            while await redis.llen(fill) == 0:
                await asyncio.sleep(0.02)
        assert await redis.llen(fill) == 1 and 0 < await redis.ttl(fill) <= keys.FILL_TTL_S
        gate.shut = False
        await inbox.until(lambda: len(inbox.got) == 1)
        assert inbox.got == [b"call.connected"] and b.reorder.gaps == 0
        await a.send_numbered(P, [b"call.ended"], seq=3)
        await inbox.until(lambda: len(inbox.got) == 2)
        assert inbox.got == [b"call.connected", b"call.ended"]
        assert notices.again.is_set() and b.reorder.late == 0
    finally:
        await stop(a, b, clients)


async def test_a_number_taken_in_no_list_has_its_connection_resume(
        gate: Gate, redis: Redis, key_prefix: str) -> None:
    """b's subscription is lost while the accept takes the kiosk's number 2 on a node that
    dies before publishing it (so it is in no list): nothing numbered follows to open a
    gap. Subscribed again, b finds the counter past the kiosk's line and closes its
    connection as a move (1012), so the kiosk resumes and hears its call. Before, the
    kiosk waited for a `call.connected` that never came (the faulted day's
    `c_1de6e8dd83e617a5`). A recorder's connection is not closed."""
    assert TAKEN_HOLD_S < 15  # `until`'s bound
    notices, kiosk = Resubscribed(), Closable()
    a, b, _, clients = await two_nodes(REDIS_URL, f"redis://127.0.0.1:{gate.port}/0",
                                       key_prefix, redis, notices, kiosk, role="terminal")
    recorder = Closable()
    b.attach("recorder:rec1", "recorder", recorder)
    await b.baseline("recorder:rec1")
    try:
        notices.again.clear()
        gate.close_all()
        await redis.hset(keys.sequences(key_prefix), P, 2)  # the accept took 2, never sent
        await redis.hincrby(keys.sequences(key_prefix), "recorder:rec1", 1)
        gate.shut = False
        await until(lambda: bool(kiosk.closed))  # after `TAKEN_HOLD_S`
        assert kiosk.closed == [(keys.DRAIN_CLOSE_CODE, "resync")]
        assert (b.reorder.gaps, b.reorder.next_of(P), recorder.closed) == (2, 3, [])
        await a.send_numbered(P, [b"call.ended"], seq=3)
        await kiosk.until(lambda: kiosk.got == [b"call.ended"])
        assert notices.again.is_set() and kiosk.closed == [(keys.DRAIN_CLOSE_CODE, "resync")]
    finally:
        await stop(a, b, clients)


async def test_a_number_taken_and_still_being_logged_is_heard_without_a_resume(
        gate: Gate, redis: Redis, key_prefix: str) -> None:
    """The same cut, but node a is alive and still logging the answer when b reads the
    counter: its `call.connected` comes within the hold and is heard in order; the
    kiosk's connection stays."""
    notices, kiosk = Resubscribed(), Closable()
    a, b, _, clients = await two_nodes(REDIS_URL, f"redis://127.0.0.1:{gate.port}/0",
                                       key_prefix, redis, notices, kiosk, role="terminal")
    try:
        gate.close_all()
        await redis.hset(keys.sequences(key_prefix), P, 2)  # the accept took 2
        gate.shut = False
        await until(lambda: b.reorder.deadline() is not None)  # read: 2 awaited
        await a.send_numbered(P, [b"call.connected"], seq=2)  # logged: sent
        await kiosk.until(lambda: kiosk.got == [b"call.connected"])
        assert (kiosk.closed, b.reorder.gaps, b.reorder.deadline()) == ([], 0, None)
    finally:
        await stop(a, b, clients)


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_call_connected_sent_while_redis_restarts_reaches_the_kiosk(
        own_redis: OwnRedis, key_prefix: str) -> None:
    """Issue 16's faulted day on a real redis-server (append-only file): the call is
    answered on a (its number taken) and Redis stops before a publishes `call.connected`;
    Redis comes back 1 s later: the kiosk on b hears it, then `call.ended`, in order."""
    presence = Redis.from_url(own_redis.url)
    a, b, inbox, clients = await two_nodes(own_redis.url, own_redis.url, key_prefix,
                                           presence)
    try:
        await presence.hset(keys.sequences(key_prefix), P, 2)  # the accept took 2
        own_redis.stop()
        await a.send_numbered(P, [b"call.connected"], seq=2)
        await until(lambda: a.publisher.failures > 0)  # tried, kept
        await own_redis.restart(1.0)
        await inbox.until(lambda: len(inbox.got) == 1)
        assert inbox.got == [b"call.connected"]
        await presence.aclose()
        presence = Redis.from_url(own_redis.url)  # its connection went with the server
        await presence.hset(keys.sequences(key_prefix), P, 3)
        await a.send_numbered(P, [b"call.ended"], seq=3)
        await inbox.until(lambda: len(inbox.got) == 2)
        assert inbox.got == [b"call.connected", b"call.ended"]
        assert (a.publisher.dropped, b.reorder.gaps, b.reorder.late) == (0, 0, 0)
    finally:
        await stop(a, b, clients)
        await presence.aclose()


LOADING_KEYS = 2_000_000  # ballast: Redis reads its append-only file back for ~3 s


async def test_messages_missed_are_read_back_once_a_restarted_redis_has_loaded(
        tmp_path: Path, key_prefix: str) -> None:
    """The goal-size day's Redis restart: b subscribed again while Redis still read its
    append-only file back, and its read of the kiosk's list was refused ("loading"): the
    messages missed were given up, never heard. b now reads them once Redis has loaded.
    Real redis-server with an append-only file big enough to take seconds to load."""
    server = OwnRedis(tmp_path, ("--enable-debug-command", "local",
                                 "--aof-use-rdb-preamble", "no"))
    await server.start()
    gate = Gate(server.port)
    await gate.start()
    presence = Redis.from_url(server.url)
    await presence.execute_command("DEBUG", "POPULATE", LOADING_KEYS, "ballast", 16)
    await presence.bgrewriteaof()
    async with asyncio.timeout(60):
        while (await presence.info("persistence"))["aof_rewrite_in_progress"]:
            await asyncio.sleep(0.1)
    notices = Resubscribed()
    a, b, inbox, clients = await two_nodes(server.url, f"redis://127.0.0.1:{gate.port}/0",
                                           key_prefix, presence, notices)
    try:
        gate.close_all()  # b's subscription lost
        await presence.hset(keys.sequences(key_prefix), P, 2)
        await a.send_numbered(P, [b"call.connected"], seq=2)
        async with asyncio.timeout(15):  # published: in the list, not heard by b
            while await presence.llen(keys.fill(key_prefix, P)) == 0:
                await asyncio.sleep(0.02)
        await presence.aclose()
        server.stop()
        notices.again.clear()
        server.launch()  # reads its file back for seconds
        gate.shut = False
        async with asyncio.timeout(15):
            await notices.again.wait()  # b subscribed again...
        probe = Redis.from_url(server.url)
        with pytest.raises(BusyLoadingError):  # ... while Redis was loading
            await probe.ping()
        await probe.aclose()
        async with asyncio.timeout(30):
            await inbox.changed.wait()
        assert inbox.got == [b"call.connected"] and b.reorder.gaps == 0
    finally:
        await stop(a, b, clients)
        await gate.aclose()
        server.stop()


async def test_the_queue_of_messages_to_publish_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond the cap relayed frames are dropped, other messages until twice the cap."""
    monkeypatch.setattr(keys, "PUBLISH_QUEUE_MAX", 2)
    client = Redis.from_url(REDIS_URL)  # never used: nothing is published here
    publisher = Publisher(client, "vwtest", b"vwtest:all")
    for n in range(3):
        publisher.put(b"vwtest:n:b", ["m", P, b"frame %d" % n])
    assert (publisher.waiting(), publisher.dropped) == (2, 1)
    for n in range(3):
        publisher.put(b"vwtest:n:b", ["s", P, [b"event"], n + 1])
    assert (publisher.waiting(), publisher.dropped) == (4, 2)
    await client.aclose()
