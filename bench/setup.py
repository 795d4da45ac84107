"""Call set-up: `call.request` -> both aiortc peers connected, through `vwin serve`.

Against the floor: the same two aiortc peers (same synthetic tracks)
connected directly in one process, no server. Median of `--calls` each; the
specialist accepts as soon as it is offered (auto-accept), sends the SDP
offer, and both trickle ICE through the server. Goal: at most 1.3x (issue 10;
1.2x was the first goal).

    python -m bench.setup [--calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import aiohttp
from aiortc import RTCConfiguration

from bench.common import VwinServer, percentile, table, workdir
from bench.provision import provision
from tests.rtc_peers import RtcClient, RtcLink, use_loopback_when_alone

GOAL_RATIO = 1.3


async def direct_once() -> float:
    """Two peers in one process: offer, answer, connected (candidates inside the SDP)."""
    config = RTCConfiguration(iceServers=[])
    caller, callee = RtcLink("callee", config), RtcLink("caller", config)
    start = time.perf_counter()
    await caller.pc.setLocalDescription(await caller.pc.createOffer())
    await callee.pc.setRemoteDescription(caller.pc.localDescription)
    await callee.pc.setLocalDescription(await callee.pc.createAnswer())
    await caller.pc.setRemoteDescription(callee.pc.localDescription)
    for link in (caller, callee):
        await link.until(lambda link=link: link.pc.connectionState == "connected",  # type: ignore[misc]
                         "connection", 30)
    elapsed = time.perf_counter() - start
    await caller.close()
    await callee.close()
    return elapsed


async def served_once(terminal: RtcClient, specialist: RtcClient) -> float:
    """One call through the server, from request to both peers connected."""
    start = time.perf_counter()
    await terminal.send({"type": "call.request", "queue": "tax"})
    offered = await specialist.recv("call.offered")
    await specialist.send({"type": "call.accept", "call_id": offered["call_id"]})
    await specialist.recv("call.connected", call_id=offered["call_id"])
    await specialist.call(offered["call_id"], terminal.me)
    await specialist.connected(terminal.me, 30)
    await terminal.connected(specialist.me, 30)
    elapsed = time.perf_counter() - start
    await terminal.send({"type": "call.hangup", "call_id": offered["call_id"]})
    for client in (terminal, specialist):
        await client.recv("call.ended", call_id=offered["call_id"])
        await client.hang_up_media()
        client.inbox.clear()
    await specialist.send({"type": "agent.wrapup_done"})
    await specialist.recv("agent.status", status="available")
    return elapsed


async def measure(calls: int) -> dict[str, list[float]]:
    use_loopback_when_alone()
    results = {"direct (no server)": [await direct_once() for _ in range(calls)]}
    for trickle in (True, False):
        name = "through vwin, " + ("ICE trickled via rtc.candidate" if trickle
                                   else "ICE inside the SDP")
        results[name] = await through_server(calls, trickle)
    return results


async def through_server(calls: int, trickle: bool) -> list[float]:
    with workdir("vwin-setup-") as work:
        server = VwinServer(work)
        accounts = await provision(server.db_url, 1, 1)
        await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                url = server.url + "/ws"
                [specialist_token] = accounts.specialists.values()
                [terminal_token] = accounts.terminals.values()
                specialist = await RtcClient.open(http, specialist_token, url, trickle)
                await specialist.available()
                terminal = await RtcClient.open(http, terminal_token, url, trickle)
                try:
                    served = [await served_once(terminal, specialist) for _ in range(calls)]
                finally:
                    await terminal.close()
                    await specialist.close()
        finally:
            server.stop()
    return served


def report(calls: int) -> str:
    results = asyncio.run(measure(calls))
    rows = [[name, len(v), statistics.median(v) * 1000, percentile(v, 90) * 1000,
             min(v) * 1000, max(v) * 1000] for name, v in results.items()]
    direct, trickled, _ = results.values()
    ratio = statistics.median(trickled) / statistics.median(direct)
    return (table(f"Call set-up: request -> both peers connected, load average "
                  f"{os.getloadavg()[0]:.1f}",
                  ["path", "calls", "median ms", "p90 ms", "min ms", "max ms"], rows)
            + "\nthrough vwin (trickled, as browsers do) / direct (medians): "
              f"{ratio:.2f}x (goal <= {GOAL_RATIO}x: "
              f"{'met' if ratio <= GOAL_RATIO else 'MISSED'})\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    print(report(args.calls))


if __name__ == "__main__":
    main()
