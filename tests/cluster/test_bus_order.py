"""Two real bus nodes over Redis: numbered messages reach a connection in their order,
whichever node sent them; a number that never comes holds the rest until its node is
known lost (then briefly) or the cap; a connection starts its line where it attached."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from server.cluster import keys
from server.cluster.bus import RedisBus
from tests.cluster.conftest import REDIS_URL

P = "specialist:alice"
HOLD_S = 0.25
CAP_S = 1.5


class Inbox:
    """A connection's outbound side that records what it was sent."""

    def __init__(self) -> None:
        self.got: list[bytes] = []
        self.changed = asyncio.Event()

    def send(self, payload: bytes) -> None:
        self.got.append(payload)
        self.changed.set()

    def close(self, code: int, reason: str) -> None:
        del code, reason

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not done():
                await self.changed.wait()
                self.changed.clear()


class Unheeded:
    """The node's notices: these tests read only what reaches the connection."""

    def queues_changed(self, queues: set[str]) -> None:
        del queues

    def calls_changed(self, call_ids: list[str]) -> None:
        del call_ids

    def resubscribed(self) -> None:
        pass


@pytest.fixture
async def nodes(redis: Redis, key_prefix: str
                ) -> AsyncIterator[tuple[RedisBus, RedisBus, Inbox]]:
    """Nodes a and b; alice's connection is on b."""
    binary = Redis.from_url(REDIS_URL)
    a, b = (RedisBus(binary, key_prefix, name, Unheeded(), reorder_hold_s=HOLD_S,
                     reorder_cap_s=CAP_S) for name in ("node-a", "node-b"))
    await a.start()
    await b.start()
    await redis.hset(keys.presence(key_prefix, P), "node", "node-b")
    inbox = Inbox()
    b.attach(P, "specialist", inbox)
    await b.baseline(P)
    try:
        yield a, b, inbox
    finally:
        await a.close()
        await b.close()
        await binary.aclose()


async def test_numbered_messages_from_two_nodes_arrive_in_sequence(
        nodes: tuple[RedisBus, RedisBus, Inbox]) -> None:
    a, b, inbox = nodes
    await b.send_numbered(P, [b"offered 1"], seq=1)
    await b.send_numbered(P, [b"offered 2"], seq=3)  # decided after a's withdrawal, sent first
    assert inbox.got == [b"offered 1"]
    await a.send_numbered(P, [b"withdrawn 1"], seq=2)
    await inbox.until(lambda: len(inbox.got) == 3)
    assert inbox.got == [b"offered 1", b"withdrawn 1", b"offered 2"]
    await a.send_numbered(P, [b"position"], as_of=1)  # older than what alice has heard: dropped
    await a.send(P, b"plain")  # unnumbered messages go straight through, as before
    await inbox.until(lambda: len(inbox.got) == 4)
    assert inbox.got[-1] == b"plain" and b.reorder.gaps == 0


async def test_a_number_that_never_comes_holds_the_next_until_the_cap(
        nodes: tuple[RedisBus, RedisBus, Inbox]) -> None:
    """Every node alive, yet number 2 never comes: 3 waits the cap, not the short hold."""
    a, b, inbox = nodes
    await a.send_numbered(P, [b"one"], seq=1)
    await inbox.until(lambda: inbox.got == [b"one"])
    sent = time.monotonic()
    await a.send_numbered(P, [b"three"], seq=3)
    await inbox.until(lambda: len(inbox.got) == 2)
    assert time.monotonic() - sent >= CAP_S * 0.9
    assert inbox.got == [b"one", b"three"] and b.reorder.gaps == 1
    await a.send_numbered(P, [b"four"], seq=4)
    await inbox.until(lambda: len(inbox.got) == 3)
    assert inbox.got[-1] == b"four"


async def test_a_number_whose_node_is_lost_holds_the_next_briefly(
        nodes: tuple[RedisBus, RedisBus, Inbox]) -> None:
    """Node a took number 2 and died before sending it: once b's watch finds a gone, 3
    goes on (it waited the short hold already)."""
    a, b, inbox = nodes
    await a.send_numbered(P, [b"one"], seq=1)
    await a.send_numbered(P, [b"three"], seq=3)
    await inbox.until(lambda: inbox.got == [b"one"])
    await asyncio.sleep(HOLD_S)  # the watch sweeps once a second; here it finds a gone now
    assert inbox.got == [b"one"]
    b.nodes_lost()
    assert inbox.got == [b"one", b"three"] and b.reorder.gaps == 1


async def test_a_resumed_connection_hears_what_was_decided_after_it_attached_in_order(
        nodes: tuple[RedisBus, RedisBus, Inbox], redis: Redis, key_prefix: str) -> None:
    """Alice resumes on b while 5 (decided before her attach) and 7 are on their way, 7
    first: she hears 5 before the re-sync, then 6 and 7; 4, decided before too but
    arriving after the re-sync, is stale."""
    a, b, _ = nodes
    await redis.hset(keys.sequences(key_prefix), P, 5)
    resumed = Inbox()
    b.attach(P, "specialist", resumed)
    await a.send_numbered(P, [b"seven"], seq=7)
    await a.send_numbered(P, [b"five"], seq=5)
    await a.send(P, b"marker")  # a publishes in order: 7 and 5 are held at b before it
    await resumed.until(lambda: resumed.got == [b"marker"])
    await b.baseline(P)
    assert resumed.got == [b"marker", b"five"]
    await a.send_numbered(P, [b"four"], seq=4)
    await a.send_numbered(P, [b"six"], seq=6)
    await resumed.until(lambda: len(resumed.got) == 4)
    assert resumed.got == [b"marker", b"five", b"six", b"seven"]
    assert b.reorder.stale == 1 and b.reorder.gaps == 0


async def test_an_unnumbered_event_waits_behind_the_numbered_message_it_follows(
        nodes: tuple[RedisBus, RedisBus, Inbox]) -> None:
    """b connected the call (3) while a's withdrawal (2) is on its way; a then replaced
    the session's recorder (`participant.joined`, numbered by no transaction): alice hears
    it after `call.connected`, not before; a relayed frame meanwhile is not held."""
    a, b, inbox = nodes
    await a.send_numbered(P, [b"one"], seq=1)
    await inbox.until(lambda: inbox.got == [b"one"])
    await b.send_numbered(P, [b"connected"], seq=3)
    await a.send_numbered(P, [b"joined"])
    await a.send(P, b"rtc")
    await inbox.until(lambda: len(inbox.got) == 2)  # a's channel is in order: joined came
    assert inbox.got == [b"one", b"rtc"]
    await a.send_numbered(P, [b"withdrawn"], seq=2)
    await inbox.until(lambda: len(inbox.got) == 5)
    assert inbox.got[2:] == [b"withdrawn", b"connected", b"joined"]
    await a.send_numbered(P, [b"left"])  # nothing held: straight through
    await inbox.until(lambda: len(inbox.got) == 6)
    assert inbox.got[-1] == b"left" and b.reorder.gaps == 0


async def test_an_unnumbered_event_waits_for_a_number_taken_before_it_was_sent(
        nodes: tuple[RedisBus, RedisBus, Inbox], redis: Redis, key_prefix: str) -> None:
    """b's transaction connected the call (number 2) and b is still logging it when a,
    having read the call connected, sends `participant.joined`: nothing is held for alice
    yet, and the event still waits for `call.connected`."""
    a, b, inbox = nodes
    await a.send_numbered(P, [b"one"], seq=1)
    await inbox.until(lambda: inbox.got == [b"one"])
    await redis.hset(keys.sequences(key_prefix), P, 2)  # as b's transaction took it
    await a.send_numbered(P, [b"joined"])
    await a.send(P, b"rtc")
    await inbox.until(lambda: len(inbox.got) == 2)
    assert inbox.got == [b"one", b"rtc"]
    await b.send_numbered(P, [b"connected"], seq=2)
    await inbox.until(lambda: len(inbox.got) == 4)
    assert inbox.got[2:] == [b"connected", b"joined"] and b.reorder.gaps == 0
