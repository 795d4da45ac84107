"""A connection's frames over real sockets: those sent in one turn of the event loop go out
corked (one transport write) as separate, complete, ordered messages; a socket that
negotiated compression (which `/ws` no longer offers, but a Connection must still serve)
still gets aiohttp's frames; a client that stops reading is still closed at the limit; a
close still comes after what was sent before it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType, web

from server.connection import Connection
from tests.helpers import (
    WAIT_S,
    Peer,
    add_terminal,
    connected_call,
    quick_specialist,
    specialist_ready,
)

CONNECTIONS = web.AppKey("connections", dict[str, Connection])
LIMIT = 8  # the send queue of the test server's connections

Connect = Callable[..., Awaitable[tuple[aiohttp.ClientWebSocketResponse, Connection]]]


async def _socket(request: web.Request) -> web.WebSocketResponse:
    """A socket whose Connection the test drives; it reads until the client closes."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    conn = Connection(ws, LIMIT, request.query["name"])
    conn.start()
    request.app[CONNECTIONS][request.query["name"]] = conn
    try:
        async for _ in ws:
            pass
    finally:
        conn.close(int(WSCloseCode.GOING_AWAY), "bye")
        with_timeout = asyncio.wait_for(asyncio.shield(conn.wait_closed()), 2.0)
        await asyncio.gather(with_timeout, return_exceptions=True)
        await conn.stop()
    return ws


@pytest.fixture
async def connect(aiohttp_client: Any) -> Connect:
    app = web.Application()
    app[CONNECTIONS] = {}
    app.router.add_get("/ws", _socket)
    client = await aiohttp_client(app)

    async def open_socket(name: str, **options: Any
                          ) -> tuple[aiohttp.ClientWebSocketResponse, Connection]:
        ws = await client.ws_connect(f"/ws?name={name}", **options)
        async with asyncio.timeout(WAIT_S):
            while name not in app[CONNECTIONS]:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0)  # the connection's writer task has started and is idle
        return ws, app[CONNECTIONS][name]

    return open_socket


def payload(n: int, size: int) -> bytes:
    """A JSON text of exactly `size` bytes (>= 20) numbered n, not ASCII only."""
    head = '{"n":%d,"pad":"' % n  # noqa: UP031
    pad = size - len(head.encode()) - 2
    text = head + "窗" * (pad // 3) + "x" * (pad % 3) + '"}'
    data = text.encode()
    assert len(data) == size
    return data


# every length encoding of a frame header: 7-bit, the 7/16-bit edge, 16-bit, 64-bit
SIZES = [20, 125, 126, 127, 300, 65535, 65536, 70_000]


async def receive_texts(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[bytes]:
    got = []
    async with asyncio.timeout(WAIT_S):
        for _ in range(count):
            frame = await ws.receive()
            assert frame.type == WSMsgType.TEXT, (frame.type, ws.close_code, len(got))
            got.append(frame.data.encode())
    return got


async def test_a_burst_arrives_complete_in_order_as_separate_messages(connect: Connect
                                                                      ) -> None:
    ws, conn = await connect("plain")
    assert conn.corking  # no compression negotiated: frames are built and written here
    sent = [payload(n, SIZES[n % len(SIZES)]) for n in range(200)]
    for data in sent:  # all in one turn of the loop: one corked write
        conn.send(data)
    assert await receive_texts(ws, len(sent)) == sent
    # and again, now that the first burst is out: corking starts over
    more = [payload(n, 300) for n in range(5)]
    for data in more:
        conn.send(data)
    assert await receive_texts(ws, len(more)) == more
    await ws.close()


async def test_a_compressing_client_gets_correct_frames(connect: Connect) -> None:
    ws, conn = await connect("deflate", compress=15)
    assert ws.compress == 15  # permessage-deflate was negotiated
    assert not conn.corking  # aiohttp compresses and writes each frame
    # (up to 16 KiB: compressed in the loop, written at once; larger ones are compressed in
    # a thread, so a burst of them waits in the queue, which this test's is too small for)
    sizes = [20, 125, 126, 127, 300, 16_000]
    sent = [payload(n, sizes[n % len(sizes)]) for n in range(40)]
    for data in sent:
        conn.send(data)
    assert await receive_texts(ws, len(sent)) == sent
    await ws.close()


async def test_a_close_comes_after_the_frames_sent_before_it(connect: Connect) -> None:
    ws, conn = await connect("closing")
    sent = [payload(n, 300) for n in range(6)]
    for data in sent:  # corked ...
        conn.send(data)
    conn.close(4000, "bye")  # ... and the close in the same turn: they go first
    conn.send(payload(99, 300))  # after the close: never written
    assert await receive_texts(ws, len(sent)) == sent
    async with asyncio.timeout(WAIT_S):
        frame = await ws.receive()
    assert frame.type == WSMsgType.CLOSE
    assert (frame.data, frame.extra) == (4000, "bye")


async def test_a_client_that_stops_reading_is_closed_and_others_lose_nothing(
        connect: Connect) -> None:
    slow, slow_conn = await connect("slow")  # never reads until the end
    fast, fast_conn = await connect("fast")
    big, sent_slow, sent_fast = 60_000, [], []
    received: list[bytes] = []

    async def read_fast() -> None:
        async for frame in fast:
            received.append(frame.data.encode())

    reader = asyncio.create_task(read_fast())
    async with asyncio.timeout(WAIT_S * 2):
        n = 0
        while not slow_conn.closing:  # until the slow socket's queue is full
            for _ in range(4):  # a turn's burst to each
                slow_conn.send(data := payload(n, big))
                sent_slow.append(data)
                fast_conn.send(data := payload(n, 300))
                sent_fast.append(data)
                n += 1
            await asyncio.sleep(0)
        while len(received) < len(sent_fast):
            await asyncio.sleep(0.01)
    assert received == sent_fast  # the other socket got every frame, in order
    # the slow client reads again: a prefix of what was sent, in order, then 1013
    got: list[bytes] = []
    async with asyncio.timeout(WAIT_S):
        while (frame := await slow.receive()).type == WSMsgType.TEXT:
            got.append(frame.data.encode())
    assert frame.type == WSMsgType.CLOSE and frame.data == WSCloseCode.TRY_AGAIN_LATER
    assert got == sent_slow[:len(got)]
    assert len(got) < len(sent_slow)  # the queue was dropped with the connection
    await fast.close()
    await reader


async def test_a_relay_burst_reaches_the_peer_whole_and_in_order(app_client: Any) -> None:
    call = await connected_call(app_client)
    texts = [f"candidate:{n} 1 udp 2122260223 192.0.2.1 {50000 + n} typ host"
             for n in range(60)]
    for text in texts:  # sent back to back: the server reads several per TCP read
        await call.kiosk.send({"type": "rtc.candidate", "call_id": call.call_id,
                               "to": call.agent_id, "candidate": {"candidate": text}})
    got = [(await call.agent.recv("rtc.candidate"))["candidate"]["candidate"]
           for _ in texts]
    assert got == texts


async def test_a_client_asking_for_compression_as_browsers_do_is_served_without(
        app_client: Any) -> None:
    """A kiosk that asks for permessage-deflate, as browsers do, in a call with a specialist
    that does not: the server does not take it up (docs/benchmarks.md, "Compression"), and
    relays both ways arrive whole and in order."""
    app = app_client.server.app
    terminal = await add_terminal(app, "T1")
    agent = await specialist_ready(app_client, await quick_specialist(app, "alice", {"tax": 1}))
    kiosk = Peer(await app_client.ws_connect("/ws", compress=15))
    assert kiosk.ws.compress == 0  # asked for, not agreed
    await kiosk.send({"type": "hello", "token": terminal})
    await kiosk.recv("welcome")
    await kiosk.send({"type": "call.request", "queue": "tax"})
    call_id = (await kiosk.recv("call.queued"))["call_id"]
    await agent.recv("call.offered", call_id=call_id)
    await agent.send({"type": "call.accept", "call_id": call_id})
    kiosk_id = (await kiosk.recv("call.connected"))["you"]
    agent_id = (await agent.recv("call.connected"))["you"]
    texts = [f"candidate:{n} 1 udp 2122260223 192.0.2.1 {50000 + n} typ host"
             for n in range(30)]
    for sender, to, receiver in ((agent, kiosk_id, kiosk), (kiosk, agent_id, agent)):
        for text in texts:
            await sender.send({"type": "rtc.candidate", "call_id": call_id, "to": to,
                               "candidate": {"candidate": text}})
        got = [(await receiver.recv("rtc.candidate"))["candidate"]["candidate"]
               for _ in texts]
        assert got == texts
