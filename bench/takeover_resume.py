"""`bench.takeover --resume`: the killed node's kiosks come back to the survivor as the pages
do, while it takes their node over.

A kiosk page whose socket drops reconnects after `backoffDelay` (web/static/js/signaling.js:
steps doubling from 0.5 s to 5 s, each delay drawn between half and all of its step) and
says `hello` with its resume token; a connection that brings no frame for 25 s
(`SILENCE_LIMIT_MS`) is dropped and tried again. The goal-size day's unrecorded kiosk
reconnected to the survivor through such a storm (hellos of up to 7 s) for its whole call.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

import aiohttp

BACKOFF_FIRST_S = 0.5  # signaling.js BACKOFF_FIRST_MS
BACKOFF_CAP_S = 5.0  # BACKOFF_CAP_MS
SILENCE_S = 25.0  # SILENCE_LIMIT_MS: no frame for that long, the page drops the socket


def backoff(attempt: int) -> float:
    """signaling.js `backoffDelay`: half its step plus up to another half, at random."""
    step = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2 ** min(attempt, 16))
    return float(step / 2 + random.random() * step / 2)


@dataclass
class Comeback:
    """What the kiosks saw coming back: each welcome's hello latency and time, refusals."""

    hellos: list[float] = field(default_factory=list)  # hello sent -> welcome, s
    back_at: list[float] = field(default_factory=list)  # monotonic, at each welcome
    resumed: int = 0  # welcomes that kept the kiosk's place (`resumed`)
    refused: int = 0  # an error or a close instead of a welcome
    attempts: int = 0
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)  # held


async def come_back(ws: aiohttp.ClientWebSocketResponse, token: str, resume: str, url: str,
                    http: aiohttp.ClientSession, seen: Comeback) -> None:
    """Hold `ws` until it drops, then reconnect to `url` until welcomed there."""
    while not ws.closed:
        if (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                         aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSING):
            break
    await ws.close()
    hello = json.dumps({"type": "hello", "token": token, "resume": resume})
    attempt = 0
    while True:
        await asyncio.sleep(backoff(attempt))
        attempt += 1
        seen.attempts += 1
        try:
            again = await http.ws_connect(url + "/ws", timeout=aiohttp.ClientWSTimeout(ws_close=5))
        except (aiohttp.ClientError, OSError):
            continue
        sent = time.monotonic()
        await again.send_str(hello)
        try:
            async with asyncio.timeout(SILENCE_S):
                frame = await again.receive()
        except TimeoutError:
            await again.close()
            continue
        if frame.type == aiohttp.WSMsgType.TEXT and '"welcome"' in frame.data[:40]:
            now = time.monotonic()
            seen.hellos.append(now - sent)
            seen.back_at.append(now)
            seen.resumed += bool(json.loads(frame.data).get("resumed"))
            seen.sockets.append(again)  # held open, as the page does
            return
        seen.refused += 1
        await again.close()
