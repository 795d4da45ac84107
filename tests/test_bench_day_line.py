"""The bench day's `Line`: a socket lost while its reader is busy with media comes back.

A goal-size day's load process never ended: a desk's socket was closed (re-sync) just as
its recorder joined; the reader, offering to the recorder, waited for the line to come
up again, which only the reader brings about. Here a real WebSocket server plays the
node: it welcomes the line, tells it a recorder joined its call and drops the TCP
connection at once; the line must say hello again (resuming) and the media offer anew."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web

from bench.day_line import Line, Media

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
