"""A Chromium kiosk that may only relay (`iceTransportPolicy: "relay"`) through a real
coturn, in a call with a console, which, connected past its credentials' TTL, is
pushed fresh ones (`ice.servers`), so its next ICE restart relays again (the old ones
are refused by then: tests/turn/test_credentials.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from server.app import create_app
from tests.browser.flows import assert_video_flowing, make_world, start_call, wait_js
from tests.browser.live import LiveServer, Pages
from tests.turn.coturn import Coturn

pytestmark = pytest.mark.slow
TTL_S = 8  # credentials expire during the test; fresh ones are pushed at 80 % of it

RELAY_ONLY = """(() => {
  const Native = window.RTCPeerConnection;
  class RelayOnly extends Native {
    constructor(config = {}) { super({ ...config, iceTransportPolicy: "relay" }); }
    setConfiguration(config) { super.setConfiguration({ ...config, iceTransportPolicy: "relay" }); }
  }
  window.RTCPeerConnection = RelayOnly;
})();"""

SELECTED = """(async () => {
  const peer = vwin.media.peers.find((p) => p.direction !== "sendonly");
  const stats = await peer.pc.getStats();
  for (const r of stats.values()) {
    if (r.type === "transport" && r.selectedCandidatePairId) {
      const pair = stats.get(r.selectedCandidatePairId);
      const local = stats.get(pair.localCandidateId);
      return `${local.candidateType} ${local.protocol} ${local.address}:${local.port} ${local.url}`;
    }
  }
  return "";
})()"""


@pytest.fixture
def live_server(coturn: Coturn, tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(create_app(coturn.settings(urls=[coturn.url("udp")], ttl_s=TTL_S)))
    server.start()
    yield server
    server.stop()


def _relay_kiosk_call(live_server: LiveServer, pages: Pages) -> tuple[Page, Page]:
    world = make_world(live_server, pages)
    original = pages.new

    def relay_page(viewport: tuple[int, int] = (1366, 768)) -> Page:
        page = original(viewport)
        if viewport == (1920, 1080):  # the kiosk's page
            page.add_init_script(RELAY_ONLY)
        return page

    pages.new = relay_page  # type: ignore[method-assign]
    call = start_call(world)
    return call.kiosk, call.console


def test_relay_only_kiosk_calls_and_relays_again_past_its_ttl(
        live_server: LiveServer, pages: Pages, coturn: Coturn) -> None:
    kiosk, console = _relay_kiosk_call(live_server, pages)
    first = wait_js(kiosk, SELECTED)
    assert first.startswith("relay udp 127.0.0.1:"), first
    assert coturn.url("udp") in first
    port = int(first.split()[2].rsplit(":", 1)[1])
    assert coturn.turn["min_port"] <= port <= coturn.turn["max_port"]

    username = "vwin.signaling.welcome.ice_servers.at(-1).username"
    issued = kiosk.evaluate(username)
    expiry = int(issued.split(":")[0])
    wait_js(kiosk, f"{username} !== {issued!r}", timeout_ms=TTL_S * 1000 + 5000,
            explain=username)
    fresh = kiosk.evaluate(username)
    assert fresh.endswith(":terminal:T1") and int(fresh.split(":")[0]) >= expiry + 1
    while time.time() < expiry + 1:  # the first credentials are now refused by coturn
        kiosk.wait_for_timeout(200)
    kiosk.evaluate("vwin.media.peers.find((p) => p.direction !== 'sendonly').restartIce()")
    after = wait_js(kiosk, f"{SELECTED}.then((s) => s && s !== {first!r} && s)",
                    explain=SELECTED)
    assert after.startswith("relay udp 127.0.0.1:"), after
    assert_video_flowing(kiosk)
    assert_video_flowing(console)
