"""A recorder's socket is read while its hello hands over what its old connection held
(`server/ws.py`, `_recorder_joined`): under load the hand-over takes seconds (one append
for every session), and the recorder's answers to the calls given to it meanwhile must be
read (the goal-size day's rec1: 28 sessions, 12 s, eight calls unrecorded when the hello
was read first)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from server import keys
from tests.helpers import connected_call
from tests.recording.test_recording_protocol import RECORDING, recorder


async def test_a_recorders_socket_is_read_while_its_hello_hands_over(
        aiohttp_client: Any, make_app: Callable[..., web.Application],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(recording=RECORDING)
    client = await aiohttp_client(app)
    board = app[keys.BOARD]
    original = board.recorder_joined
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(who: Any, capacity: int | None) -> None:
        started.set()
        await release.wait()  # the hand-over's appends, on a loaded database
        await original(who, capacity)

    monkeypatch.setattr(board, "recorder_joined", slow)
    rec = await recorder(client, "rec-a")
    async with asyncio.timeout(10):
        await started.wait()
    await rec.send({"type": "ping"})
    await rec.recv("pong", timeout=10)  # read while the hand-over runs
    release.set()
    call = await connected_call(client)
    start = await rec.recv("record.start")
    assert start["session_id"] == call.session_id


async def test_a_failed_hand_over_closes_the_recorders_socket(
        aiohttp_client: Any, make_app: Callable[..., web.Application],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """It says hello again (as `vwin recorder` does after any close) rather than stay
    connected and never be given its sessions."""
    app = make_app(recording=RECORDING)
    client = await aiohttp_client(app)

    async def failing(who: Any, capacity: int | None) -> None:
        raise RuntimeError("Redis went away")

    monkeypatch.setattr(app[keys.BOARD], "recorder_joined", failing)
    rec = await recorder(client, "rec-a")
    async with asyncio.timeout(10):
        frame = await rec.ws.receive()
        while frame.type == WSMsgType.TEXT:  # the re-sync's queue status, before the close
            frame = await rec.ws.receive()
    assert rec.ws.close_code == 1011
