"""Call set-up: `call.request` -> both aiortc peers connected, through `vwin serve`.

Against the floor: the same two aiortc peers (same synthetic tracks)
connected directly in one process, no server. Median of `--calls` each; the
specialist accepts as soon as it is offered (auto-accept), sends the SDP
offer, and both trickle ICE through the server. Goal: at most 1.3x (issue 10;
1.2x was the first goal).

The direct floor has its candidates inside the SDP; the second floor trickles them
right after each description, still without a server. Each path is printed beside the
floor with the same ICE. Neither floor pays aioice's pacing: a candidate added after the
peer's `connect()` began waits for its next 20 ms tick (`Connection._check_periodic`),
so a peer that gets a relayed description in one read and its candidates in a later one
pays up to 20 ms more (in process, a turn of the loop before each candidate: 54 ms
against 34 in the SDP).

    python -m bench.setup [--calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import aiohttp
from aiortc import RTCConfiguration, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp

from bench.common import VwinServer, percentile, table, workdir
from bench.provision import provision
from tests.rtc_peers import TRICKLED, RtcClient, RtcLink, use_loopback_when_alone

GOAL_RATIO = 1.3
DIRECT_TRICKLED = "direct, ICE trickled (no server)"


async def direct_once(trickle: bool = False) -> float:
    """Two peers in one process: offer, answer, connected (candidates inside the SDP, or
    `trickle`d after each description, in the order `RtcClient` sends them)."""
    config = RTCConfiguration(iceServers=[])
    caller, callee = RtcLink("callee", config), RtcLink("caller", config)
    start = time.perf_counter()
    await caller.pc.setLocalDescription(await caller.pc.createOffer())
    await callee.pc.setRemoteDescription(_description(caller, trickle))
    await callee.pc.setLocalDescription(await callee.pc.createAnswer())
    if trickle:
        await _trickle(caller, callee)
    await caller.pc.setRemoteDescription(_description(callee, trickle))
    if trickle:
        await _trickle(callee, caller)
    for link in (caller, callee):
        await link.until(lambda link=link: link.pc.connectionState == "connected",  # type: ignore[misc]
                         "connection", 30)
    elapsed = time.perf_counter() - start
    await caller.close()
    await callee.close()
    return elapsed


def _description(link: RtcLink, trickle: bool) -> RTCSessionDescription:
    local = link.pc.localDescription
    if not trickle:
        return local
    lines = [x for x in local.sdp.splitlines() if not x.startswith(TRICKLED)]
    return RTCSessionDescription(sdp="\r\n".join(lines) + "\r\n", type=local.type)


async def _trickle(source: RtcLink, to: RtcLink) -> None:
    """`source`'s candidates, then end-of-candidates, added at `to` one by one."""
    transceiver = source.pc.getTransceivers()[0]  # BUNDLE: one transport for all
    for local in transceiver.sender.transport.transport.iceGatherer.getLocalCandidates():
        candidate = candidate_from_sdp(candidate_to_sdp(local))
        candidate.sdpMid, candidate.sdpMLineIndex = transceiver.mid, 0
        await to.pc.addIceCandidate(candidate)
    await to.pc.addIceCandidate(None)


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
    results = {"direct (no server)": [await direct_once() for _ in range(calls)],
               DIRECT_TRICKLED: [await direct_once(trickle=True) for _ in range(calls)]}
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
    direct, direct_trickled, trickled, in_sdp = (statistics.median(v) for v in results.values())
    ratio = trickled / direct
    return (table(f"Call set-up: request -> both peers connected, load average "
                  f"{os.getloadavg()[0]:.1f}",
                  ["path", "calls", "median ms", "p90 ms", "min ms", "max ms"], rows)
            + "\nthrough vwin (trickled, as browsers do) / direct (medians): "
              f"{ratio:.2f}x (goal <= {GOAL_RATIO}x: "
              f"{'met' if ratio <= GOAL_RATIO else 'MISSED'})\n"
            + "through vwin / direct with the same ICE (the server's own part): inside the "
              f"SDP {in_sdp / direct:.2f}x, trickled {trickled / direct_trickled:.2f}x\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    print(report(args.calls))


if __name__ == "__main__":
    main()
