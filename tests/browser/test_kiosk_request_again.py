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


def test_a_refusal_of_an_earlier_request_does_not_end_this_visit(live_server: LiveServer,
                                                                 pages: Pages) -> None:
    """A copy of the last visit's request, read late by the server, is refused
    `request_done` with that visit's key as this visit's request goes out: the page knows
    the key is not its own and keeps waiting (taken for this request's refusal, the visitor
    saw an error and the call made went on without them)."""
    kiosk = waiting_kiosk(live_server, pages)
    stale = {"type": "error", "code": "request_done", "refused": "call.request",
             "request_id": "0123456789abcdef",
             "message": "request 0123456789abcdef made call c_0 already"}

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if json.loads(message).get("type") == "call.request":
                ws.send(json.dumps(stale))  # before this request's own reply
            server.send(message)

        ws.on_message(from_page)

    kiosk.route_web_socket("**/ws", route)
    kiosk.reload()
    expect(kiosk.locator(".queue-btn[data-queue=tax]")).to_be_enabled(timeout=WAIT_MS)
    kiosk.evaluate("""() => {  // whether the error screen showed at any moment
      const message = document.getElementById("screen-message");
      window.messageShown = false;
      new MutationObserver(() => { window.messageShown ||= !message.hidden; })
        .observe(message, { attributes: true });
    }""")
    kiosk.locator(".queue-btn[data-queue=tax]").click()
    expect(kiosk.locator("#wait-position")).to_have_text("第 1 位", timeout=WAIT_MS)
    expect(kiosk.locator("#screen-waiting")).to_be_visible()
    assert kiosk.evaluate("window.messageShown") is False
