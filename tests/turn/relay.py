"""Relay-only aiortc parties and what a test checks about their ICE path."""

from __future__ import annotations

from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy

from tests.helpers import bearer, eventually, quick_manager
from tests.recording.analysis import segments_settled
from tests.rtc_peers import RtcClient, RtcLink


def relay_only(client: RtcClient, servers: list[dict[str, Any]] | None = None) -> RtcClient:
    """New links of `client` gather relay candidates only (`iceTransportPolicy = relay`)."""
    chosen = client.welcome["ice_servers"] if servers is None else servers
    client.config = RTCConfiguration(iceServers=[RTCIceServer(**s) for s in chosen],
                                     iceTransportPolicy=RTCIceTransportPolicy.RELAY)
    return client


def selected_pair(link: RtcLink) -> tuple[str, str]:
    """(local type, remote type) of the candidate pair ICE nominated on the link."""
    transport = link.pc.getTransceivers()[0].sender.transport.transport
    pair = transport._connection._nominated[1]  # aioice: component 1 (RTP and RTCP muxed)
    return pair.local_candidate.type, pair.remote_candidate.type


def local_types(link: RtcLink) -> set[str]:
    transport = link.pc.getTransceivers()[0].sender.transport.transport
    return {c.type for c in transport.iceGatherer.getLocalCandidates()}


async def recordings(client: Any, session_id: str, parties: int) -> list[dict[str, Any]]:
    """The session's recordings once each party's one segment is complete and hashed."""
    auth = bearer(await quick_manager(client.server.app, "boss"))
    found: list[dict[str, Any]] = []

    async def ready() -> bool:
        nonlocal found
        detail = await (await client.get(f"/api/sessions/{session_id}", headers=auth)).json()
        found = detail["recordings"]
        return segments_settled(found, parties, {1: "complete"})

    await eventually(ready, timeout=30)
    return found
