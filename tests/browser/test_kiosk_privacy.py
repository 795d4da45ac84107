"""The kiosk forgets its visitor, and kiosk and console say at once when no camera can work.

After a call and its rating, or `[kiosk] idle_reset_s` without a touch, nothing the
visitor typed is left in the page or its storage, and the kiosk speaks Chinese again.
A page served over plain HTTP from a host name that is not loopback is not a secure
context (Chromium counts all of 127.0.0.0/8 and localhost as secure, so the test's
browser resolves `vwin.test` to the server's 127.0.0.1): both pages warn before
anyone tries a call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Playwright, expect

from server.app import create_app
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.flows import (
    SPECIALIST,
    WAIT_MS,
    login,
    make_world,
    open_console,
    open_kiosk,
    send_chat,
    start_call,
)
from tests.browser.live import LiveServer, Pages
from tests.helpers import make_settings

pytestmark = pytest.mark.browser

IDLE_RESET_S = 2.0
INSECURE_HOST = "vwin.test"
VISITOR = ("浦东新区隐私测试贸易有限公司", "91310115591693856A", "请帮我查一下退税进度")
# Everything the page shows or keeps: visible text, form values, both storages.
TRACES = """() => [
  document.body.innerText,
  ...[...document.querySelectorAll("input, textarea")].map((e) => e.value),
  ...Object.keys(localStorage).map((k) => `${k}=${localStorage.getItem(k)}`),
  ...Object.keys(sessionStorage).map((k) => `${k}=${sessionStorage.getItem(k)}`),
].join("\\n")"""


def assert_forgotten(kiosk: Page, *typed: str) -> None:
    expect(kiosk.locator("#screen-home")).to_be_visible(timeout=WAIT_MS)
    expect(kiosk.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(kiosk.locator("#home-title")).to_have_text("请选择办理事项")
    traces = kiosk.evaluate(TRACES)
    for text in typed:
        assert text not in traces
    assert kiosk.evaluate("localStorage.getItem('vwin.lang')") is None


@pytest.fixture
def quick_reset_server(tmp_path: Path) -> Iterator[LiveServer]:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}",
                             kiosk={"idle_reset_s": IDLE_RESET_S})
    server = LiveServer(create_app(settings))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def insecure_pages(live_server: LiveServer, playwright_instance: Playwright) -> Iterator[Pages]:
    """Pages of a Chromium that finds the test server under a name that is not loopback."""
    rule = f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1"
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM,
                                                  args=[*CHROMIUM_ARGS, rule])
    opened = Pages(browser, live_server, live_server.url.replace("127.0.0.1", INSECURE_HOST))
    yield opened
    opened.close()
    browser.close()
    assert opened.console_errors == []


def test_idle_kiosk_forgets_the_visitor(
    quick_reset_server: LiveServer, pages_for: Callable[[LiveServer], Pages]
) -> None:
    opener = pages_for(quick_reset_server)
    world = make_world(quick_reset_server, opener)
    open_console(opener.new(), available=False)  # a specialist logged in: the queue is open
    kiosk = world.kiosk()
    kiosk.get_by_role("button", name="English").click()
    expect(kiosk.locator("html")).to_have_attribute("lang", "en")
    kiosk.get_by_label("Enterprise name").fill(VISITOR[0])
    kiosk.get_by_label("Unified social credit code").fill(VISITOR[1])
    last_touch = time.monotonic()
    expect(kiosk.locator("#uscc-hint")).to_have_text("Check character is correct")
    assert VISITOR[0] in kiosk.evaluate(TRACES)  # the probe sees what was typed

    expect(kiosk.locator("#ent-name")).to_have_value("", timeout=WAIT_MS)
    assert time.monotonic() - last_touch >= IDLE_RESET_S - 0.2  # not before the idle time
    assert_forgotten(kiosk, *VISITOR[:2])
    expect(kiosk.locator("#uscc-hint")).to_have_text("")


def test_kiosk_forgets_the_visitor_after_a_rated_call(
    live_server: LiveServer, pages: Pages
) -> None:
    call = start_call(make_world(live_server, pages))
    kiosk = call.kiosk
    send_chat(kiosk, call.console, VISITOR[2])
    kiosk.get_by_role("button", name="English").click()
    kiosk.get_by_role("button", name="Hang up").click()
    expect(kiosk.locator("#screen-rating")).to_be_visible(timeout=WAIT_MS)
    kiosk.locator("#rating-stars [data-score='5']").click()
    kiosk.get_by_label("Comments (optional)").fill("非常满意 " + VISITOR[0])
    kiosk.get_by_role("button", name="Submit rating").click()
    expect(kiosk.locator("#rating-status")).to_contain_text("Thank you", timeout=WAIT_MS)
    assert_forgotten(kiosk, "嘉定面包店", "91310115591693856A", VISITOR[2], VISITOR[0])
    expect(kiosk.locator("#kiosk-chat .chat-line")).to_have_count(0)


def test_kiosk_and_console_warn_outside_a_secure_context(
    live_server: LiveServer, insecure_pages: Pages
) -> None:
    browser_pages = insecure_pages
    tokens = make_world(live_server, browser_pages).terminal_tokens
    console = browser_pages.new()
    login(console, SPECIALIST[0], SPECIALIST[1], "/console")
    expect(console.locator("#insecure-warning")).to_be_visible(timeout=WAIT_MS)
    expect(console.locator("#insecure-warning")).to_contain_text("HTTPS")

    kiosk = browser_pages.new()
    kiosk.goto("/kiosk")
    assert kiosk.evaluate("window.isSecureContext") is False
    expect(kiosk.locator("#screen-setup")).to_be_visible()
    warning = kiosk.locator("#insecure-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("HTTPS")
    expect(warning).to_contain_text("无法使用摄像头")
    open_kiosk(kiosk, tokens["T1"])  # the home screen still says it, before any tap
    expect(warning).to_be_visible()


def test_no_warning_in_a_secure_context(live_server: LiveServer, pages: Pages) -> None:
    world = make_world(live_server, pages)
    open_console(pages.new(), available=False)
    expect(pages.contexts[-1].pages[0].locator("#insecure-warning")).to_be_hidden()
    kiosk = world.kiosk()
    assert kiosk.evaluate("window.isSecureContext") is True
    expect(kiosk.locator("#insecure-warning")).to_be_hidden()
