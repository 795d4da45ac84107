"""An appointment end to end in Chromium: booked on /book on a phone (390x844, touch), the
code typed at a kiosk, answered before a walk-in who queued earlier at another kiosk."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from server.app import create_app
from tests.appointments.conftest import SHANGHAI, queues
from tests.browser.flows import WAIT_MS, World, assert_video_flowing, open_console, provision, snap
from tests.browser.live import LiveServer, Pages
from tests.helpers import make_settings
from tests.joint.conftest import uscc

pytestmark = pytest.mark.timeout(300)
ENTERPRISE_NAME = "嘉定预约测试有限公司"


@pytest.fixture
def booking_server(tmp_path: Path) -> Iterator[LiveServer]:
    """Tax takes bookings in 5-minute slots: the next one starts within the arrival window."""
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}",
                             queues=queues(slot_minutes=5))
    server = LiveServer(create_app(settings))
    server.start()
    yield server
    server.stop()


def phone(browser: Browser, pages: Pages) -> Page:
    """A phone: 390x844, touch, no language cookie (Chinese first)."""
    context = browser.new_context(base_url=pages.base_url, viewport={"width": 390, "height": 844},
                                  has_touch=True, is_mobile=True)
    pages.contexts.append(context)
    page = context.new_page()
    page.on("pageerror", lambda exc: pages.console_errors.append(str(exc)))
    return page


def book_on_phone(page: Page, artifacts: Path) -> str:
    page.goto("/book")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.get_by_role("radio", name="税务咨询").tap()
    page.locator("#day-list [role=radio]").first.tap()
    first_free = page.locator("#slot-list [role=radio]:enabled").first
    expect(first_free).to_be_visible(timeout=WAIT_MS)
    expect(first_free).to_contain_text("余 2 个")
    first_free.tap()
    page.get_by_label("企业名称").fill(ENTERPRISE_NAME)
    page.get_by_label("统一社会信用代码").fill(uscc())
    expect(page.locator("#book-uscc-hint")).to_have_text("校验通过")
    snap(page, artifacts, "book-zh-CN", full_page=True)
    page.get_by_role("button", name="确认预约").tap()
    expect(page.locator("#step-done")).to_be_visible(timeout=WAIT_MS)
    code = page.locator("#done-code").inner_text()
    assert len(code) == 8
    expect(page.locator("#done-state")).to_have_text("已预约，待到场")
    expect(page.locator("#done-qr")).to_have_js_property("complete", True, timeout=WAIT_MS)
    assert page.evaluate("document.querySelector('#done-qr').naturalWidth") > 100
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px)"
    snap(page, artifacts, "book-done-zh-CN", full_page=True)
    return code


def test_booked_on_a_phone_then_answered_before_an_earlier_walk_in(
        browser: Browser, booking_server: LiveServer,
        pages_for: Callable[[LiveServer], Pages], artifacts: Path) -> None:
    pages = pages_for(booking_server)
    world = World(booking_server, pages, provision(booking_server, ("W1", "B1")))
    code = book_on_phone(phone(browser, pages), artifacts)

    console = pages.new((1366, 768))
    open_console(console, available=False)
    walk_in = world.kiosk("W1")
    walk_in.locator(".queue-btn[data-queue=tax]").click()
    expect(walk_in.locator("#wait-position")).to_have_text("第 1 位", timeout=WAIT_MS)

    kiosk = world.kiosk("B1")
    kiosk.get_by_role("button", name="我有预约").click()
    expect(kiosk.locator("#screen-appointment")).to_be_visible()
    for ch in code:
        kiosk.locator("#code-keypad").get_by_role("button", name=ch, exact=True).click()
    expect(kiosk.locator("#code-display")).to_have_text(f"{code[:4]} {code[4:]}")
    snap(kiosk, artifacts, "kiosk-appointment-code")
    kiosk.get_by_role("button", name="确认").click()
    expect(kiosk.locator("#wait-position")).to_have_text("第 1 位", timeout=WAIT_MS)
    expect(walk_in.locator("#wait-position")).to_have_text("第 2 位", timeout=WAIT_MS)

    console.get_by_role("button", name="Available").click()
    offer = console.get_by_role("alertdialog", name="Incoming call")
    expect(offer).to_be_visible(timeout=WAIT_MS)
    expect(offer).to_contain_text("Terminal B1")
    expect(offer).to_contain_text(ENTERPRISE_NAME)
    console.get_by_role("button", name="Accept").click()
    expect(kiosk.locator("#screen-call")).to_be_visible(timeout=WAIT_MS)
    assert_video_flowing(kiosk)
    expect(walk_in.locator("#screen-waiting")).to_be_visible()
    expect(walk_in.locator("#wait-position")).to_have_text("第 1 位", timeout=WAIT_MS)

    check = pages.new((390, 844))
    check.goto(f"/book?code={code}")
    expect(check.locator("#done-state")).to_have_text("Served")


def test_a_closed_queue_shows_its_hours_and_offers_a_booking(
        tmp_path: Path, pages_for: Callable[[LiveServer], Pages], artifacts: Path) -> None:
    hour = (dt.datetime.now(SHANGHAI).hour + 2) % 24  # a half hour that is not now
    hours = f"{hour:02d}:00-{hour:02d}:30"
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}",
                             queues=queues(hours=hours))
    server = LiveServer(create_app(settings))
    server.start()
    try:
        pages = pages_for(server)
        world = World(server, pages, provision(server, ("K1",)))
        kiosk = pages.new((1920, 1080))
        kiosk.goto("/kiosk")
        kiosk.get_by_label("设备令牌").fill(world.terminal_tokens["K1"])
        kiosk.get_by_role("button", name="保存并连接").click()
        tile = kiosk.locator(".queue-btn[data-queue=tax]")
        expect(tile).to_contain_text(f"不在服务时间（{hours}）· 下次开放", timeout=WAIT_MS)
        expect(tile).to_contain_text(f"{hour:02d}:00")
        expect(tile).to_be_disabled()
        snap(kiosk, artifacts, "kiosk-closed-by-hours")
        kiosk.get_by_role("link", name="预约办理").click()
        expect(kiosk.get_by_role("radio", name="税务咨询")).to_be_visible(timeout=WAIT_MS)
        kiosk.get_by_role("link", name="‹ 返回自助终端").click()
        expect(kiosk.locator(".queue-btn[data-queue=tax]")).to_be_visible(timeout=WAIT_MS)
    finally:
        server.stop()
