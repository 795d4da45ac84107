"""A kiosk moved to another node (its socket closed with 1012, as a node rebalancing its
connections or draining closes it), in real Chromium: the page resumes without showing
a loss (no banner, its connection state never leaves "open"), and a queue the visitor
chose while it reconnected is asked for once it is back (no error screen)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from playwright.sync_api import WebSocketRoute, expect

from tests.browser.flows import WAIT_MS, waiting_kiosk
from tests.browser.live import LiveServer, Pages

pytestmark = pytest.mark.browser

WATCH = """() => {
  window.states = [];
  vwin.signaling.on("state", (e) => window.states.push(e.state));
  const banner = document.getElementById("conn-state");
  window.bannerShown = false;
  new MutationObserver(() => { if (!banner.hidden) window.bannerShown = true; })
    .observe(banner, { attributes: true });
}"""


def test_a_kiosk_moved_by_its_node_shows_nothing(live_server: LiveServer,
                                                 pages: Pages) -> None:
    kiosk = waiting_kiosk(live_server, pages)
    sockets: list[tuple[WebSocketRoute, WebSocketRoute]] = []  # (page side, server side)
    hellos: list[dict[str, object]] = []
    held: list[str] = []  # the second socket's hello, until the test lets it through
    hold = threading.Event()

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        sockets.append((ws, server))

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "hello":
                hellos.append(frame)
                if hold.is_set():
                    held.append(str(message))
                    return
            server.send(message)

        ws.on_message(from_page)

    kiosk.route_web_socket("**/ws", route)
    kiosk.reload()  # its socket through the route from now on
    expect(kiosk.locator(".queue-btn[data-queue=tax]")).to_be_enabled(timeout=WAIT_MS)
    kiosk.evaluate(WATCH)

    hold.set()
    page_side, server_side = sockets[-1]
    server_side.close()
    page_side.close(code=1012, reason="rebalance")
    kiosk.locator(".queue-btn[data-queue=tax]").click()  # while it reconnects
    expect(kiosk.locator("#screen-waiting")).to_be_visible(timeout=WAIT_MS)
    deadline = time.monotonic() + WAIT_MS / 1000
    while not held:  # the reconnection's hello, held by the route
        assert time.monotonic() < deadline, "the kiosk did not reconnect"
        kiosk.wait_for_timeout(20)
    sockets[-1][1].send(held[0])  # the node it moved to answers

    expect(kiosk.locator("#wait-position")).to_have_text("第 1 位", timeout=WAIT_MS)
    assert len(hellos) == 2 and hellos[1].get("resume")  # it resumed
    assert kiosk.evaluate("window.states") == []  # "open" all along
    assert kiosk.evaluate("window.bannerShown") is False
    expect(kiosk.locator("#conn-state")).to_be_hidden()
    assert kiosk.locator("body").get_attribute("data-connection") == "open"
