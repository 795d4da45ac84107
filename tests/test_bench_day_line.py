"""The bench day's `Line`: a socket lost while its reader is busy with media comes back.

A goal-size day's load process never ended: a desk's socket was closed (re-sync) just as
its recorder joined; the reader, offering to the recorder, waited for the line to come
up again, which only the reader brings about. Here a real WebSocket server plays the
node: it welcomes the line, tells it a recorder joined its call and drops the TCP
connection at once; the line must say hello again (resuming) and the media offer anew."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bench.day_line import Line, Media
from bench.day_worker import STOP_S, _ended

TIMEOUT_S = 30.0


async def test_a_socket_lost_while_the_reader_offers_to_a_recorder_is_opened_again(
    aiohttp_client: Any
) -> None:
    hellos: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def node(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        hello = json.loads((await ws.receive()).data)
        await hellos.put(hello)
        await ws.send_json({"type": "welcome", "resume": "r1", "ice_servers": []})
        if "resume" in hello:  # the line came back: a resumed call, its recorder listed
            await ws.send_json({"type": "call.connected", "call_id": "c1", "resumed": True,
                                "participants": [{"id": "rec1", "role": "recorder"}]})
            async for frame in ws:  # what the line sends now, to the test
                await hellos.put(json.loads(frame.data))
            return ws
        go = await ws.receive()  # the test's ping: the line's media is set
        assert json.loads(go.data)["type"] == "ping"
        await ws.send_json({"type": "participant.joined", "call_id": "c1",
                            "participant": {"id": "rec1", "role": "recorder"}})
        assert request.transport is not None
        request.transport.abort()  # the socket gone under the reader's offer
        return ws

    app = web.Application()
    app.router.add_get("/ws", node)
    client = await aiohttp_client(app)
    url = str(client.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        line = Line(http, [url], "token", 0)
        await line.open()
        assert (await asyncio.wait_for(hellos.get(), TIMEOUT_S)).get("resume") is None
        line.current = "c1"
        line.media = Media(line, "c1")
        await line.send({"type": "ping"})
        again = await asyncio.wait_for(hellos.get(), TIMEOUT_S)
        assert again == {"type": "hello", "token": "token", "resume": "r1", "call_id": "c1"}
        offer = await asyncio.wait_for(hellos.get(), TIMEOUT_S)  # the offer sent again
        assert offer["type"] == "rtc.description" and offer["to"] == "rec1"
        assert offer["description"]["type"] == "offer"
        assert line.reconnects == 1
        await line.close()


async def test_a_desk_still_running_after_closing_fails_the_day_naming_where_it_waits(
) -> None:
    line_up = asyncio.Event()  # never set: a desk waiting for its line for good

    async def send() -> None:
        await line_up.wait()

    async def run() -> None:
        await send()

    stuck = asyncio.create_task(run(), name="desk sp0031")
    finished = asyncio.create_task(asyncio.sleep(0), name="desk sp0002")
    with pytest.raises(RuntimeError) as failed:
        await _ended([stuck, finished], time.time() + 0.5, "desks")
    message = str(failed.value)
    assert message.startswith(f"1 of 2 desks still running {STOP_S:.0f} s after closing:")
    assert "desk sp0031: " in message and "desk sp0002" not in message
    assert re.search(r" run -> \S+ send -> \S+locks\.py:\d+ wait$", message), message
    await asyncio.gather(stuck, return_exceptions=True)
    assert stuck.cancelled()
