"""The pages' own guard against a re-sync that crossed a hang-up, in real Chromium: a
`call.connected` (`resumed: true`) for a call the page already heard end is ignored, so
the console stays in its wrap-up and the kiosk on its rating screen (they showed the
ended call until the next one). The server no longer sends one
(`tests/switchboard/test_resume_crossing.py`); the frame is what it sent before, added
to the real server's frames by Playwright's WebSocket route."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.browser.flows import WAIT_MS, answered, make_world, open_console, wait_js
from tests.browser.live import LiveServer, Pages

pytestmark = pytest.mark.browser

# A function, not statements: `evaluate` calls a function the expression evaluates to
# (`on` returns the one that unsubscribes).
COUNT_PONGS = "() => { window.pongs = 0; vwin.signaling.on('pong', () => { window.pongs += 1; }); }"


class Tap:
    """A page's WebSocket through Playwright: the server's frames reach the page as they
    are, and are kept; the test may add one (`inject`)."""

    def __init__(self, page: Page) -> None:
        self.frames: list[dict[str, Any]] = []
        self.route: WebSocketRoute | None = None
        page.route_web_socket("**/ws", self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def down(message: str | bytes) -> None:
            self.frames.append(json.loads(message))
            ws.send(message)

        server.on_message(down)
        self.route = ws

    def last(self, kind: str) -> dict[str, Any]:
        return [f for f in self.frames if f["type"] == kind][-1]

    def inject(self, page: Page, frame: dict[str, Any]) -> None:
        """The frame, then a `pong`; returns once the page handled both, in that order."""
        assert self.route is not None
        page.evaluate(COUNT_PONGS)
        self.route.send(json.dumps(frame))
        self.route.send(json.dumps({"type": "pong"}))
        wait_js(page, "window.pongs > 0")


def test_a_resumed_connected_for_an_ended_call_is_ignored(pages: Pages,
                                                          live_server: LiveServer) -> None:
    world = make_world(live_server, pages)
    console = pages.new()
    console_tap = Tap(console)
    open_console(console)
    kiosk = pages.new((1920, 1080))
    kiosk_tap = Tap(kiosk)
    answered(console, kiosk, world.terminal_tokens["T1"])
    expect(console.locator("#call-panel")).to_be_visible(timeout=WAIT_MS)
    console.locator("#hang-up").click()
    expect(console.locator("#wrapup-panel")).to_be_visible(timeout=WAIT_MS)
    expect(kiosk.locator("#screen-rating")).to_be_visible(timeout=WAIT_MS)

    for page, tap in ((console, console_tap), (kiosk, kiosk_tap)):
        ended = tap.last("call.ended")
        stale = {**tap.last("call.connected"), "resumed": True}
        assert stale["call_id"] == ended["call_id"]
        tap.inject(page, stale)
        assert page.evaluate("vwin.media.peers.length") == 0
    expect(console.locator("#wrapup-panel")).to_be_visible()
    assert console.evaluate("document.body.dataset.panel") == "wrapup"
    expect(kiosk.locator("#screen-rating")).to_be_visible()
    expect(kiosk.locator("#screen-call")).to_be_hidden()


class Outage:
    """A kiosk's network through Playwright that can go down: its socket is cut and new
    ones refused until it is up again."""

    def __init__(self, page: Page) -> None:
        self.down = False
        self.hellos: list[dict[str, Any]] = []
        self.socket: WebSocketRoute | None = None
        page.route_web_socket("**/ws", self._route)

    def _route(self, ws: WebSocketRoute) -> None:
        if self.down:
            ws.close(code=4000, reason="network down")
            return
        server = ws.connect_to_server()

        def up(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "hello":
                self.hellos.append(frame)
            server.send(message)

        ws.on_message(up)
        self.socket = ws

    def cut(self) -> None:
        self.down = True
        assert self.socket is not None
        self.socket.close(code=4000, reason="network down")


def test_a_call_ended_while_the_kiosk_was_offline_is_told_when_it_is_back(
        pages: Pages, live_server: LiveServer) -> None:
    """The park's network drops during the call and the specialist hangs up meanwhile: the
    kiosk's `call.ended` reaches no socket. Back, the kiosk names its call in its hello and
    hears it ended: the visitor gets the rating screen (it showed the call for ever)."""
    world = make_world(live_server, pages)
    console = pages.new()
    open_console(console)
    kiosk = pages.new((1920, 1080))
    network = Outage(kiosk)
    answered(console, kiosk, world.terminal_tokens["T1"])
    call_id = kiosk.evaluate("vwin.media.call.call_id")
    network.cut()
    expect(kiosk.locator("#conn-state")).to_be_visible(timeout=WAIT_MS)
    console.locator("#hang-up").click()
    expect(console.locator("#wrapup-panel")).to_be_visible(timeout=WAIT_MS)
    network.down = False
    expect(kiosk.locator("#screen-rating")).to_be_visible(timeout=WAIT_MS)
    assert network.hellos[-1]["call_id"] == call_id and network.hellos[-1]["resume"]
