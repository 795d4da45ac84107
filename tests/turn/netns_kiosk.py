"""A kiosk party run inside the test's kiosk network namespace (`ip netns exec`).

`python -m tests.turn.netns_kiosk WS_URL TOKEN SECONDS`: asks for the tax queue, answers
the specialist's offer, sends SECONDS of media to the recorder, then prints one JSON
line of what it saw and waits for `call.ended`.
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp

from tests.rtc_peers import RtcClient, send_to
from tests.turn.relay import selected_pair


async def main(url: str, token: str, seconds: float) -> None:
    async with aiohttp.ClientSession() as http:
        kiosk = await RtcClient.open(http, token, url)
        try:
            await kiosk.send({"type": "call.request", "queue": "tax"})
            connected = await kiosk.recv("call.connected", timeout=60)
            [specialist] = [p["id"] for p in connected["participants"]
                            if p["role"] == "specialist"]
            [recorder] = [p["id"] for p in connected["participants"] if p["role"] == "recorder"]
            link = await kiosk.frames(specialist, video=15, audio=15, timeout=60)
            await send_to([kiosk], connected["call_id"], recorder, seconds, timeout=60)
            print(json.dumps({"call_id": connected["call_id"],
                              "session_id": connected["session_id"],
                              "specialist": selected_pair(link),
                              "recorder": selected_pair(kiosk.links[recorder]),
                              "received": link.received}), flush=True)
            await kiosk.recv("call.ended", timeout=60)
        finally:
            await kiosk.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
