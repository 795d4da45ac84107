"""Leave the kiosk, keep your place, in real Chromium: the kiosk shows a QR code while the
visitor waits, a phone (390x844, touch) opens its URL and takes the call over, the kiosk
goes home, the console answers the phone, and both sides decode video."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.flows import WAIT_MS, assert_video_flowing, make_world, open_console, snap
from tests.browser.i18n_check import COLLECT_JS, language_checks
from tests.browser.live import LiveServer, Pages

pytestmark = pytest.mark.browser

PHONE = (390, 844)


def open_phone(pages: Pages, url: str) -> Page:
    phone = pages.new(PHONE, lang=None, mobile=True)
    phone.goto(url)
    return phone


def speaks_only(page: Page, server: LiveServer, lang: str) -> None:
    """Every text of the page is from `lang`'s catalog (tests/browser/i18n_check.py)."""
    check = language_checks(server.app)[lang]
    assert page.evaluate("document.documentElement.lang") == lang
    assert check.strays(page.evaluate(COLLECT_JS)) == []


def test_a_phone_takes_the_kiosk_call_over(live_server: LiveServer, pages: Pages,
                                           artifacts: Path) -> None:
    world = make_world(live_server, pages)
    console = pages.new((1366, 768))
    open_console(console, available=False)  # away: the visitor waits
    kiosk = world.kiosk()
    kiosk.locator(".queue-btn[data-queue=tax]").click()
    expect(kiosk.locator("#screen-waiting")).to_be_visible(timeout=WAIT_MS)
    panel = kiosk.locator("#handoff")
    expect(panel).to_be_visible(timeout=WAIT_MS)
    expect(panel).to_contain_text("用手机继续排队")
    expect(kiosk.locator("#handoff-qr")).to_have_js_property("complete", True, timeout=WAIT_MS)
    assert kiosk.locator("#handoff-qr").evaluate("(img) => img.naturalWidth") > 100
    speaks_only(kiosk, live_server, "zh-CN")
    snap(kiosk, artifacts, "kiosk-handoff-qr")
    url = panel.get_attribute("data-url")
    assert url is not None and url.startswith(f"{live_server.url}/m/vwm_")

    phone = open_phone(pages, url)
    expect(phone.locator("#screen-waiting")).to_be_visible(timeout=WAIT_MS)
    expect(phone.locator("#wait-position")).to_have_text("第 1 位", timeout=WAIT_MS)
    expect(phone.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(kiosk.locator("#screen-home")).to_be_visible(timeout=WAIT_MS)
    expect(kiosk.locator(".queue-btn[data-queue=tax]")).to_be_enabled()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE[0], f"the phone page scrolls sideways: {width} px"
    speaks_only(phone, live_server, "zh-CN")
    snap(phone, artifacts, "phone-waiting")
    phone.get_by_role("button", name="English").tap()
    expect(phone.locator("#wait-position")).to_have_text("No. 1")
    speaks_only(phone, live_server, "en")
    phone.locator("#lang-toggle").tap()

    second = open_phone(pages, url)  # the ticket opens once
    expect(second.locator("#screen-message")).to_be_visible(timeout=WAIT_MS)
    expect(second.locator("#message-text")).to_contain_text("已被使用")
    snap(second, artifacts, "phone-ticket-used")

    phone.reload()  # the resume token in localStorage keeps the place
    expect(phone.locator("#wait-position")).to_have_text("第 1 位", timeout=WAIT_MS)

    console.get_by_role("button", name="Available").click()
    offer = console.get_by_role("alertdialog", name="Incoming call")
    expect(offer).to_be_visible(timeout=WAIT_MS)
    expect(offer).to_contain_text("Terminal T1")
    console.get_by_role("button", name="Accept").click()
    expect(phone.locator("#screen-call")).to_be_visible(timeout=WAIT_MS)
    assert_video_flowing(phone)
    assert_video_flowing(console)
    phone.locator(".chat-form input").fill("我在手机上")
    phone.get_by_role("button", name="发送").tap()
    expect(console.locator(".chat-log")).to_contain_text("我在手机上", timeout=WAIT_MS)
    snap(phone, artifacts, "phone-call")

    phone.get_by_role("button", name="结束通话").tap()
    expect(phone.locator("#screen-rating")).to_be_visible(timeout=WAIT_MS)
    phone.get_by_role("radio", name="5 星").tap()
    phone.get_by_role("button", name="提交评价").tap()
    expect(phone.locator("#message-text")).to_contain_text("感谢", timeout=WAIT_MS)
    expect(console.locator("#wrapup-panel")).to_be_visible(timeout=WAIT_MS)
