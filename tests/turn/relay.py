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


def turn_sockets(link: RtcLink) -> list[Any]:
    """The sockets of every TURN allocation the link made (aioice: one per gathered relay)."""
    transport = link.pc.getTransceivers()[0].sender.transport.transport
    found = []
    for protocol in transport._connection._protocols:
        inner = getattr(protocol.transport, "_TurnTransport__inner_protocol", None)
        if inner is not None:
            found.append(inner.transport.get_extra_info("socket"))
    return found


def relay_tls_version(link: RtcLink) -> str | None:
    """The TLS version of the connection to the TURN server the nominated pair relays
    through, or None when it is not TLS (aioice keeps it on its TURN transport)."""
    transport = link.pc.getTransceivers()[0].sender.transport.transport
    turn = transport._connection._nominated[1].protocol.transport  # aioice TurnTransport
    inner = turn._TurnTransport__inner_protocol  # the TURN client protocol: its TCP/TLS socket
    tls = inner.transport.get_extra_info("ssl_object")
    return None if tls is None else str(tls.version())
