"""What a user does on the pages, as reusable steps for the browser tests.

The pages run under a CSP without 'unsafe-eval', so Playwright's
`wait_for_function` (which evals its predicate in the page) cannot be used;
`wait_js` polls `page.evaluate` (run by the debugger, not subject to CSP).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

from tests.browser.live import LiveServer, Pages
from tests.helpers import add_manager, add_specialist, add_terminal

WAIT_MS = 20_000  # generous: a busy 2-core machine runs two browsers and the server
POLL_MS = 100

SPECIALIST = ("alice", "alice-pass", "Alice Wang")
MANAGER = ("boss", "manager-pass")


def wait_js(page: Page, expression: str, timeout_ms: int = WAIT_MS, explain: str = "") -> Any:
    """Poll a JavaScript expression until it is truthy; return its value. On timeout the
    value of `explain` (another expression) goes into the message."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            state = f"; {explain} = {page.evaluate(explain)!r}" if explain else ""
            raise AssertionError(f"still false after {timeout_ms} ms: {expression}{state}")
        page.wait_for_timeout(POLL_MS)


def frames_decoded(page: Page) -> int:
    return int(page.evaluate("vwin.media.inboundVideo().then((v) => v.framesDecoded)"))


def assert_video_flowing(page: Page) -> None:
    """The remote <video> has a picture and the decoder keeps producing frames."""
    wait_js(page, "document.querySelector('#remote-video').videoWidth > 0")
    first = frames_decoded(page)
    wait_js(page, f"vwin.media.inboundVideo().then((v) => v.framesDecoded > {first} + 5)")


def login(page: Page, username: str, password: str, path: str) -> None:
    page.goto(path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    # A glob "**/manage" would already match "/login?next=/manage": compare the path.
    page.wait_for_url(lambda url: urlsplit(url).path == path, timeout=WAIT_MS)


def open_console(page: Page, available: bool = True) -> None:
    login(page, SPECIALIST[0], SPECIALIST[1], "/console")
    expect(page.locator("#queue-rows tr[data-queue=tax]")).to_be_visible(timeout=WAIT_MS)
    if available:
        page.get_by_role("button", name="Available").click()
        expect(page.locator("#agent-state")).to_have_text("Available", timeout=WAIT_MS)


def open_kiosk(page: Page, token: str) -> None:
    page.goto("/kiosk")
    page.get_by_label("设备令牌").fill(token)
    page.get_by_role("button", name="保存并连接").click()
    expect(page.locator("#screen-home")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(".queue-btn[data-queue=tax]")).to_be_enabled(timeout=WAIT_MS)


def answered(console: Page, kiosk: Page, token: str) -> None:
    """The kiosk (its page opened with `token`) asks for tax; the console accepts; the
    kiosk shows the call."""
    open_kiosk(kiosk, token)
    kiosk.locator(".queue-btn[data-queue=tax]").click()
    expect(console.get_by_role("alertdialog", name="Incoming call")).to_be_visible(
        timeout=WAIT_MS)
    console.get_by_role("button", name="Accept").click()
    expect(kiosk.locator("#screen-call")).to_be_visible(timeout=WAIT_MS)


@dataclass
class Call:
    kiosk: Page
    console: Page


@dataclass
class World:
    server: LiveServer
    pages: Pages
    terminal_tokens: dict[str, str]

    def kiosk(self, terminal: str = "T1", viewport: tuple[int, int] = (1920, 1080)) -> Page:
        page = self.pages.new(viewport)
        open_kiosk(page, self.terminal_tokens[terminal])
        return page


def provision(server: LiveServer, terminals: tuple[str, ...] = ("T1",),
              manager: bool = False) -> dict[str, str]:
    """A tax specialist, the terminals and maybe a manager, made with the app's own APIs;
    returns the terminals' device tokens."""
    app = server.app
    server.run(add_specialist(app, SPECIALIST[0], {"tax": 1}, password=SPECIALIST[1],
                              department="tax", name=SPECIALIST[2]))
    if manager:  # argon2 hashing is slow on purpose: only when the test needs one
        server.run(add_manager(app, MANAGER[0], MANAGER[1]))
    return {t: server.run(add_terminal(app, t)) for t in terminals}


def make_world(server: LiveServer, pages: Pages, terminals: tuple[str, ...] = ("T1",),
               manager: bool = False) -> World:
    return World(server, pages, provision(server, terminals, manager))


def waiting_kiosk(server: LiveServer, pages: Pages) -> Page:
    """A kiosk whose visitor's call will wait: the specialist is logged in, away."""
    world = make_world(server, pages)
    open_console(pages.new((1366, 768)), available=False)
    return world.kiosk()


def start_call(world: World, shots: Path | None = None, terminal: str = "T1") -> Call:
    """Console available, kiosk asks for tax, the console rings and accepts; media flows."""
    console = world.pages.new((1366, 768))
    open_console(console)
    kiosk = world.kiosk(terminal)
    kiosk.get_by_label("企业名称").fill("嘉定面包店")
    kiosk.get_by_label("统一社会信用代码").fill("91310115591693856A")
    expect(kiosk.locator("#uscc-hint")).to_have_text("校验通过")
    snap(kiosk, shots, "kiosk-home")
    kiosk.locator(".queue-btn[data-queue=tax]").click()

    offer = console.get_by_role("alertdialog", name="Incoming call")
    expect(offer).to_be_visible(timeout=WAIT_MS)
    expect(offer).to_have_attribute("data-ringing", "true")
    assert console.evaluate("vwin.ringer.ringing") is True
    expect(offer).to_contain_text(f"Terminal {terminal}")
    expect(offer).to_contain_text("Site park1")
    expect(offer).to_contain_text("91310115591693856A")
    expect(kiosk.locator("#screen-waiting")).to_be_visible()
    expect(kiosk.locator("#wait-position")).to_have_text("第 1 位")
    snap(console, shots, "console-ringing")
    snap(kiosk, shots, "kiosk-waiting")
    console.get_by_role("button", name="Accept").click()
    assert console.evaluate("vwin.ringer.ringing") is False

    expect(kiosk.locator("#screen-call")).to_be_visible(timeout=WAIT_MS)
    expect(console.locator("#call-panel")).to_be_visible(timeout=WAIT_MS)
    expect(kiosk.locator("#specialist-name")).to_have_text(SPECIALIST[2])
    assert_video_flowing(kiosk)
    assert_video_flowing(console)
    return Call(kiosk, console)


def send_chat(sender: Page, receiver: Page, text: str) -> None:
    sender.locator(".chat-form input").fill(text)
    sender.locator(".chat-form input").press("Enter")
    expect(receiver.locator(".chat-log")).to_contain_text(text, timeout=WAIT_MS)


def snap(page: Page, shots: Path | None, name: str, full_page: bool = False) -> None:
    if shots is not None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=full_page)
