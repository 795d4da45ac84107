"""TURN over TLS (`turns:...?transport=tcp`): a real coturn listening for TLS with a
self-signed certificate, and both aiortc parties of a call relay-only through it, seeing
and hearing each other.

aiortc hands aioice only `turn_ssl = True`, so the TLS connection is verified with the
process's default trust store: a party trusts a private CA the way OpenSSL lets any
program do, by `SSL_CERT_FILE` (or the system store, `update-ca-certificates`). The
verification is real: with the certificate not trusted, no relay is allocated.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.config import TurnSettings
from server.turn import check_allocation
from tests.edge.serve import self_signed
from tests.rtc_peers import RtcClient, use_loopback_when_alone
from tests.turn.coturn import Coturn
from tests.turn.relay import local_types, relay_tls_version, selected_pair, turn_sockets
from tests.turn.test_relay_calls import FRAMES, _connected_call

pytestmark = pytest.mark.slow


@pytest.fixture
def tls_coturn(tmp_path: Path) -> Iterator[Coturn]:
    if shutil.which("turnserver") is None:
        pytest.fail("turnserver is missing: apt-get install -y coturn (make install-test)")
    server = Coturn(tmp_path, tls=self_signed(tmp_path))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def parties() -> AsyncIterator[list[RtcClient]]:
    use_loopback_when_alone()
    opened: list[RtcClient] = []
    yield opened
    sockets = [s for party in opened for link in party.links.values() for s in turn_sockets(link)]
    for party in opened:
        await party.close()
    # A TLS socket closes after its close_notify exchange, a moment after `close()`: wait
    # for it here, or it is left open when the test's event loop ends.
    async with asyncio.timeout(10):
        while any(s is not None and s.fileno() != -1 for s in sockets):
            await asyncio.sleep(0.05)


def _trust(monkeypatch: pytest.MonkeyPatch, coturn: Coturn) -> None:
    """Trust the self-signed certificate the way OpenSSL reads a private CA."""
    assert coturn.tls is not None
    monkeypatch.setenv("SSL_CERT_FILE", str(coturn.tls[0]))


async def test_relay_only_call_over_turn_tls(aiohttp_client: Any, tls_coturn: Coturn,
                                             parties: list[RtcClient],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url = tls_coturn.url("tls")
    assert url.startswith("turns:") and url.endswith("?transport=tcp")
    _trust(monkeypatch, tls_coturn)
    client = await aiohttp_client(create_app(tls_coturn.settings(urls=[url])))
    connected = await _connected_call(client, parties, url, url)
    specialist, terminal = parties
    [turn] = terminal.welcome["ice_servers"]
    assert turn["urls"] == [url] and turn["username"].endswith(":terminal:T1")
    await specialist.call(connected["call_id"], terminal.me)
    for me, other in ((specialist, terminal), (terminal, specialist)):
        link = await me.frames(other.me, video=FRAMES, audio=FRAMES)
        assert local_types(link) == {"relay"}
        assert selected_pair(link) == ("relay", "relay")
        assert relay_tls_version(link) in ("TLSv1.2", "TLSv1.3")  # the relay is reached over TLS


async def test_an_untrusted_certificate_gets_no_relay(tls_coturn: Coturn,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The same server, the same credentials: not trusted, no allocation (the call test
    above shows the trusted case)."""
    turn = TurnSettings(**tls_coturn.turn)
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")  # nothing trusted at all
    with pytest.raises(ConnectionError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        await check_allocation(turn, tls_coturn.url("tls"), timeout=10)
