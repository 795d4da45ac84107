"""Lean protocol clients for the load generators: hello, and pairing calls.

These are raw `aiohttp` WebSockets (no media), so a single load process can
drive thousands of connections; `tests.rtc_peers.RtcClient` is the full
participant with real WebRTC.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

WAIT_S = 60.0  # generous: thousands of hellos queue up on a busy machine


@dataclass
class Leg:
    """One side of a connected call: its socket, its participant id and its peer's."""

    ws: aiohttp.ClientWebSocketResponse
    me: str
    peer: str
    call_id: str


async def receive(ws: aiohttp.ClientWebSocketResponse, type_: str,
                  timeout: float = WAIT_S) -> dict[str, Any]:
    """The next message of `type_`, skipping others (queue.status, agent.status...)."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.receive()
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"socket closed ({frame.type}) waiting for {type_}")
            msg: dict[str, Any] = json.loads(frame.data)
            if msg["type"] == type_:
                return msg
            if msg["type"] == "error":
                raise RuntimeError(f"server error waiting for {type_}: {msg}")


async def hello(http: aiohttp.ClientSession, url: str, token: str, compress: int = 0
                ) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """Open `/ws`, authenticate and return the socket with its `welcome`. `compress`: the
    permessage-deflate window bits to ask for (15, as browsers do), 0 for none."""
    ws = await http.ws_connect(url, autoping=True, max_msg_size=0, compress=compress)
    await ws.send_str(json.dumps({"type": "hello", "token": token}))
    return ws, await receive(ws, "welcome")


async def pair_calls(http: aiohttp.ClientSession, url: str, terminals: list[str],
                     specialists: list[str], queue: str = "tax",
                     specialist_url: str = "", compress: int = 0) -> list[tuple[Leg, Leg]]:
    """Bring each (terminal, specialist) token pair into a connected call through the server.

    `specialist_url` puts the specialists on another node of a cluster (default: `url`).
    """
    pairs = []
    for terminal_token, specialist_token in zip(terminals, specialists, strict=True):
        spec_ws, spec_welcome = await hello(http, specialist_url or url, specialist_token,
                                            compress)
        await spec_ws.send_str(json.dumps({"type": "agent.status", "status": "available"}))
        term_ws, term_welcome = await hello(http, url, terminal_token, compress)
        await term_ws.send_str(json.dumps({"type": "call.request", "queue": queue}))
        offered = await receive(spec_ws, "call.offered")
        await spec_ws.send_str(json.dumps({"type": "call.accept", "call_id": offered["call_id"]}))
        await receive(spec_ws, "call.connected")
        await receive(term_ws, "call.connected")
        call_id = offered["call_id"]
        terminal_id = term_welcome["participant_id"]
        specialist_id = spec_welcome["participant_id"]
        pairs.append((Leg(term_ws, terminal_id, specialist_id, call_id),
                      Leg(spec_ws, specialist_id, terminal_id, call_id)))
    return pairs
