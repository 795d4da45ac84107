"""Relay-only aiortc parties and what a test checks about their ICE path."""

from __future__ import annotations

from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCIceTransportPolicy

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
