"""A kiosk's `call.request` lost with its socket (issue 16's `no_reply`: written into a socket
the server no longer read), in real Chromium: the page sends it again, with the same
`request_id`, once its socket is back, and the visitor gets a place in the queue instead of
waiting for ever."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import WebSocketRoute, expect

from tests.browser.flows import WAIT_MS, waiting_kiosk
from tests.browser.live import LiveServer, Pages

pytestmark = pytest.mark.browser


def test_a_request_lost_with_the_socket_is_sent_again(live_server: LiveServer,
                                                      pages: Pages) -> None:
    kiosk = waiting_kiosk(live_server, pages)
    requests: list[dict[str, object]] = []  # those the server was given
    lost: list[dict[str, object]] = []

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "call.request" and not lost:
                lost.append(frame)  # the network drops it, and the socket with it
                server.close()
                ws.close(code=4000, reason="network lost")
                return
            if frame.get("type") == "call.request":
                requests.append(frame)
            server.send(message)

        ws.on_message(from_page)

    kiosk.route_web_socket("**/ws", route)
    kiosk.reload()  # its socket through the route from now on
    expect(kiosk.locator(".queue-btn[data-queue=tax]")).to_be_enabled(timeout=WAIT_MS)
    kiosk.locator(".queue-btn[data-queue=tax]").click()
    expect(kiosk.locator("#screen-waiting")).to_be_visible(timeout=WAIT_MS)
    expect(kiosk.locator("#wait-position")).to_have_text("第 1 位", timeout=WAIT_MS)
    assert len(lost) == 1 and len(requests) == 1
    assert requests[0]["request_id"] == lost[0]["request_id"]
    assert requests[0]["queue"] == "tax"
