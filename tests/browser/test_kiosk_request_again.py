"""A kiosk's `call.request` lost with its socket (issue 16's `no_reply`: written into a socket
the server no longer read), in real Chromium: the page sends it again, with the same
`request_id`, once its socket is back, and the visitor gets a place in the queue instead of
waiting for ever."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.browser.flows import WAIT_MS, make_world, open_console, open_kiosk, waiting_kiosk
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


def test_an_answer_crossing_the_visitors_cancel_leaves_the_kiosk_home(
        live_server: LiveServer, pages: Pages) -> None:
    """The visitor gives up as the specialist answers, and the answer's `call.connected`
    reaches the kiosk only after the end (relayed from the answering node, overtaken by the
    cancel's `call.ended`: the short CI day's mismatch). The cancel tells the answer itself
    first; the kiosk, home already, shows neither the call nor the rating, and the late
    answer is dropped (it put the kiosk back in a call that was over)."""
    world = make_world(live_server, pages)
    console = pages.new((1366, 768))
    open_console(console)
    kiosk = pages.new((1920, 1080))
    routes: list[WebSocketRoute] = []
    held: list[str | bytes] = []
    told: list[dict[str, object]] = []

    def route(ws: WebSocketRoute) -> None:
        routes.append(ws)
        server = ws.connect_to_server()
        ws.on_message(server.send)

        def to_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "call.connected" and not frame.get("resumed") and not held:
                held.append(message)  # still on its way from the answering node
                return
            told.append(frame)
            ws.send(message)

        server.on_message(to_page)

    kiosk.route_web_socket("**/ws", route)
    open_kiosk(kiosk, world.terminal_tokens["T1"])
    kiosk.locator(".queue-btn[data-queue=tax]").click()
    expect(console.get_by_role("alertdialog", name="Incoming call")).to_be_visible(
        timeout=WAIT_MS)
    console.get_by_role("button", name="Accept").click()
    _until(kiosk, lambda: bool(held), "the answer's call.connected")
    expect(kiosk.locator("#screen-waiting")).to_be_visible()
    kiosk.locator("#cancel-call").click()
    _until(kiosk, lambda: any(f["type"] == "call.ended" for f in told), "the cancel's end")
    assert [(f["type"], f.get("resumed")) for f in told if f["type"] in (
        "call.connected", "call.ended")] == [("call.connected", True), ("call.ended", None)]
    call_id = json.loads(held[0])["call_id"]
    # The late answer, after the end: the page's client drops it (a caller never joins an
    # ended call again), and says so; by then the page has handled all before it.
    with kiosk.expect_console_message(lambda msg: f"ignoring call.connected for {call_id}"
                                      in msg.text, timeout=WAIT_MS):
        routes[-1].send(held[0])
    expect(kiosk.locator("#screen-home")).to_be_visible()
    expect(kiosk.locator("#screen-rating")).to_be_hidden()
    expect(console.locator("#wrapup-panel")).to_be_visible(timeout=WAIT_MS)


def _until(page: Page, done: Callable[[], bool], what: str) -> None:
    """Until `done` (set by a route's handler, run while Playwright waits on the page)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not done():
        assert time.monotonic() < deadline, f"no {what} within {WAIT_MS} ms"
        page.wait_for_timeout(50)
