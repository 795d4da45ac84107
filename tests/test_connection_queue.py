"""A connection's send queue: frames in order, close after what is queued, and a client
too slow to keep up closed (1013) instead of holding the sender or growing without end."""

from __future__ import annotations

import asyncio

from aiohttp import WSCloseCode, WSMsgType

from server.connection import Connection


class Socket:
    """The WebSocket's sending side as `Connection` uses it; `gate` holds the writer the way
    a client that stopped reading does."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed: tuple[int, bytes] | None = None
        self.gate = asyncio.Event()
        self.gate.set()
        self.done = asyncio.Event()

    async def send_frame(self, payload: bytes, kind: WSMsgType) -> None:
        assert kind == WSMsgType.TEXT
        await self.gate.wait()
        self.frames.append(payload)

    async def close(self, *, code: int, message: bytes) -> bool:
        self.closed = (code, message)
        self.done.set()
        return True


async def test_frames_go_out_in_order_then_the_close() -> None:
    socket = Socket()
    conn = Connection(socket, 8, "test")  # type: ignore[arg-type]
    conn.start()
    for n in range(5):
        conn.send(b"%d" % n)
    conn.close(4000, "bye")
    conn.send(b"late")  # after the close: still queued behind it, never written
    await asyncio.wait_for(socket.done.wait(), 10)
    assert socket.frames == [b"0", b"1", b"2", b"3", b"4"]
    assert socket.closed == (4000, b"bye")
    await conn.stop()


async def test_a_client_that_does_not_read_is_closed_not_waited_for() -> None:
    socket = Socket()
    socket.gate.clear()
    conn = Connection(socket, 4, "test")  # type: ignore[arg-type]
    conn.start()
    conn.send(b"first")  # taken by the writer, which now waits on the client
    await asyncio.sleep(0)
    for n in range(4):
        conn.send(b"%d" % n)  # fills the queue; the sender is never held
    assert socket.closed is None
    conn.send(b"one too many")
    await asyncio.wait_for(socket.done.wait(), 10)
    assert socket.closed == (int(WSCloseCode.TRY_AGAIN_LATER), b"too slow")
    assert socket.frames == []  # what was queued is dropped with the connection
    conn.send(b"after")  # a closed connection takes nothing more
    await conn.wait_closed()
    assert socket.frames == []


async def test_a_client_that_keeps_up_has_each_frame_written_at_once() -> None:
    socket = Socket()
    conn = Connection(socket, 8, "test")  # type: ignore[arg-type]
    conn.start()
    await asyncio.sleep(0)  # the writer task is idle
    conn.send(b"0")
    assert socket.frames == [b"0"]  # in the socket before send returned: no task hand-off
    conn.send(b"1")
    assert socket.frames == [b"0", b"1"]
    await conn.stop()


async def test_a_write_that_waits_keeps_its_place_before_later_frames() -> None:
    socket = Socket()
    conn = Connection(socket, 8, "test")  # type: ignore[arg-type]
    conn.start()
    await asyncio.sleep(0)
    socket.gate.clear()  # the client stops reading
    conn.send(b"0")  # begun here, finished by the writer task once the client reads again
    conn.send(b"1")
    conn.send(b"2")
    assert socket.frames == []
    socket.gate.set()
    conn.close(4000, "bye")
    await asyncio.wait_for(socket.done.wait(), 10)
    assert socket.frames == [b"0", b"1", b"2"]
    conn.send(b"3")  # a write at once again would jump the close: it queues behind it
    assert socket.frames == [b"0", b"1", b"2"]
    await conn.stop()


class BrokenSocket(Socket):
    """The peer went away: every write fails as aiohttp's does on a closing transport."""

    async def send_frame(self, payload: bytes, kind: WSMsgType) -> None:
        raise ConnectionResetError("Cannot write to closing transport")


async def test_a_socket_that_fails_a_write_takes_nothing_more() -> None:
    socket = BrokenSocket()
    conn = Connection(socket, 8, "test")  # type: ignore[arg-type]
    conn.start()
    await asyncio.sleep(0)
    conn.send(b"0")
    await asyncio.wait_for(conn.wait_closed(), 10)  # the writer stopped
    conn.send(b"1")
    assert socket.frames == []
    await conn.stop()
