"""The yardstick for `bench.relay`: the least a WebSocket relay must do.

`hello {token}` names the connection (the token is its participant id);
every later frame is decoded, gets `from`, and is sent to the connection named
by `to`. No auth, no validation, no call membership, no rate limit, no
per-connection send queue. msgspec for JSON, like the real server, so the
comparison is about the server's work and not the JSON library.
"""

from __future__ import annotations

import msgspec
from aiohttp import WSMsgType, web

SOCKETS = web.AppKey("sockets", dict[str, web.WebSocketResponse])


async def relay(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=256 * 1024)
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    first = await ws.receive()
    if first.type != WSMsgType.TEXT:
        return ws
    me = str(msgspec.json.decode(first.data)["token"])
    sockets[me] = ws
    try:
        await ws.send_str('{"type":"welcome","participant_id":"%s"}' % me)  # noqa: UP031
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                break
            msg = msgspec.json.decode(frame.data)
            target = sockets.get(msg.get("to"))
            if target is not None:
                msg["from"] = me
                await target.send_str(msgspec.json.encode(msg).decode())
    finally:
        if sockets.get(me) is ws:
            del sockets[me]
    return ws


def serve(port: int) -> None:
    """Run the bare relay until killed (the target of a multiprocessing.Process)."""
    app = web.Application()
    app[SOCKETS] = {}
    app.router.add_get("/ws", relay)
    web.run_app(app, host="127.0.0.1", port=port, print=None)
