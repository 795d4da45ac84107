"""The whole journey in real Chromium: kiosk, specialist console and manager pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, Playwright, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.flows import (
    MANAGER,
    WAIT_MS,
    assert_video_flowing,
    login,
    make_world,
    open_console,
    open_kiosk,
    send_chat,
    snap,
    start_call,
)
from tests.browser.live import LiveServer, Pages

pytestmark = pytest.mark.browser


def test_consultation_from_kiosk_to_manager_report(
    live_server: LiveServer, pages: Pages, artifacts: Path
) -> None:
    world = make_world(live_server, pages, manager=True)
    policy = pages.new().request.get("/kiosk").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    call = start_call(world, shots=artifacts)
    kiosk, console = call.kiosk, call.console

    send_chat(kiosk, console, "你好，我想咨询增值税申报")
    send_chat(console, kiosk, "Please show your VAT return")
    snap(kiosk, artifacts, "kiosk-call")
    snap(console, artifacts, "console-call")
    kiosk.set_viewport_size({"width": 1080, "height": 1920})
    snap(kiosk, artifacts, "kiosk-call-portrait")

    kiosk.get_by_role("button", name="结束通话").click()
    expect(kiosk.locator("#screen-rating")).to_be_visible(timeout=WAIT_MS)
    kiosk.get_by_role("radio", name="4 星").click()
    kiosk.get_by_label("意见或建议（选填）").fill("办理很快")
    snap(kiosk, artifacts, "kiosk-rating")
    kiosk.get_by_role("button", name="提交评价").click()
    expect(kiosk.locator("#rating-status")).to_contain_text("感谢", timeout=WAIT_MS)

    expect(console.locator("#wrapup-panel")).to_be_visible(timeout=WAIT_MS)
    console.get_by_label("Follow-up needed").check()
    console.get_by_label("Notes").fill("Needs the VAT form 2 resubmitted")
    snap(console, artifacts, "console-wrapup")
    console.get_by_role("button", name="Save and finish").click()
    expect(console.locator("#idle-note")).to_have_text("Wrap-up saved.", timeout=WAIT_MS)
    expect(console.locator("#agent-state")).to_have_text("Available", timeout=WAIT_MS)
    expect(kiosk.locator("#screen-home")).to_be_visible(timeout=WAIT_MS)

    manager = pages.new((1366, 768))
    check_manager_pages(manager, artifacts)


def check_manager_pages(manager: Page, artifacts: Path) -> None:
    login(manager, MANAGER[0], MANAGER[1], "/manage")
    expect(manager.locator("#kpi-answered")).to_have_text("1", timeout=WAIT_MS)
    snap(manager, artifacts, "manage-dashboard", full_page=True)

    manager.get_by_role("link", name="Sessions").click()
    manager.get_by_label("Outcome").select_option("follow_up")
    manager.get_by_label("Rating").select_option("4")
    manager.get_by_role("button", name="Apply").click()
    rows = manager.locator("#session-rows tr")
    expect(rows).to_have_count(1, timeout=WAIT_MS)
    expect(rows.first).to_contain_text("嘉定面包店")
    expect(rows.first).to_contain_text("Alice Wang")
    snap(manager, artifacts, "manage-sessions", full_page=True)

    export = manager.get_by_role("link", name="Export CSV")
    # The one session matches with or without the filter: wait for the link to carry it.
    expect(export).to_have_attribute("href", re.compile("outcome=follow_up"), timeout=WAIT_MS)
    csv_href = export.get_attribute("href")
    assert csv_href is not None
    session_id = rows.first.get_attribute("data-session")
    assert session_id
    csv = manager.request.get(csv_href)
    assert csv.ok and csv.headers["content-type"].startswith("text/csv")
    assert session_id in csv.text() and "Needs the VAT form 2 resubmitted" in csv.text()

    rows.first.get_by_role("link").click()
    expect(manager).to_have_url(re.compile(f"/manage/sessions/{session_id}$"))
    timeline = manager.locator("#timeline")
    for event in ("queued", "offered", "answered", "chat", "ended", "rating", "wrapup"):
        expect(timeline.locator(f"li[data-type={event}]").first).to_be_visible(timeout=WAIT_MS)
    expect(manager.locator("#outcome")).to_contain_text("(4/5)")
    expect(manager.locator("#outcome")).to_contain_text("办理很快")
    expect(manager.locator("#outcome")).to_contain_text("Needs the VAT form 2 resubmitted")
    expect(manager.locator("#transcript")).to_contain_text("你好，我想咨询增值税申报")
    expect(manager.locator("#participants tr")).to_have_count(2)
    expect(manager.locator("section#recordings")).to_be_visible()
    snap(manager, artifacts, "manage-session", full_page=True)

    manager.get_by_role("link", name="Sites & terminals").click()
    expect(manager.locator("tr[data-terminal=T1] .badge")).to_have_text("online", timeout=WAIT_MS)
    manager.get_by_label("Terminal id").fill("T9")
    manager.get_by_label("Name", exact=True).first.fill("Anting park lobby")
    manager.get_by_role("button", name="Create terminal").click()  # cookie auth + CSRF header
    expect(manager.locator("#token-value")).to_have_value(re.compile(r"^vwt_"), timeout=WAIT_MS)
    expect(manager.locator("tr[data-terminal=T9] .badge")).to_have_text("offline")
    snap(manager, artifacts, "manage-sites", full_page=True)
    manager.once("dialog", lambda dialog: dialog.accept())
    manager.get_by_role("button", name="Revoke terminal Anting park lobby").click()
    expect(manager.locator("tr[data-terminal=T9] .badge")).to_have_text("revoked", timeout=WAIT_MS)


def test_kiosk_reload_keeps_queue_position(live_server: LiveServer, pages: Pages) -> None:
    world = make_world(live_server, pages, terminals=("T1", "T2"))
    console = pages.new()
    open_console(console, available=False)  # logged in but away: calls wait
    first, second = world.kiosk("T1"), world.kiosk("T2")
    first.locator(".queue-btn[data-queue=tax]").click()
    expect(first.locator("#wait-position")).to_have_text("第 1 位", timeout=WAIT_MS)
    second.locator(".queue-btn[data-queue=tax]").click()
    expect(second.locator("#wait-position")).to_have_text("第 2 位", timeout=WAIT_MS)

    second.reload()
    expect(second.locator("#screen-waiting")).to_be_visible(timeout=WAIT_MS)
    expect(second.locator("#wait-position")).to_have_text("第 2 位", timeout=WAIT_MS)
    expect(first.locator("#wait-position")).to_have_text("第 1 位")
    expect(console.locator("#queue-rows tr[data-queue=tax] .waiting")).to_have_text("2")


def test_network_loss_mid_call_keeps_the_session(live_server: LiveServer, pages: Pages) -> None:
    world = make_world(live_server, pages)
    call = start_call(world)
    kiosk, console = call.kiosk, call.console

    kiosk.context.set_offline(True)
    expect(kiosk.locator("#conn-state")).to_have_text("网络中断，正在重新连接…", timeout=WAIT_MS)
    expect(kiosk.locator("body")).to_have_attribute("data-connection", "reconnecting")
    kiosk.context.set_offline(False)
    expect(kiosk.locator("body")).to_have_attribute("data-connection", "open", timeout=WAIT_MS)
    expect(kiosk.locator("#conn-state")).to_be_hidden()

    expect(kiosk.locator("#screen-call")).to_be_visible()
    expect(console.locator("#call-panel")).to_be_visible()
    send_chat(kiosk, console, "网络恢复了吗？")
    send_chat(console, kiosk, "Yes, I can hear you again")
    assert_video_flowing(kiosk)
    assert_video_flowing(console)


def test_dashboard_updates_when_a_call_is_queued(live_server: LiveServer, pages: Pages) -> None:
    world = make_world(live_server, pages, manager=True)
    console = pages.new()
    open_console(console, available=False)
    manager = pages.new()
    login(manager, MANAGER[0], MANAGER[1], "/manage")
    waiting = manager.locator("#queue-rows tr[data-queue=tax] .waiting")
    expect(waiting).to_have_text("0", timeout=WAIT_MS)
    manager.evaluate("window.notReloaded = true")

    kiosk = world.kiosk()
    kiosk.locator(".queue-btn[data-queue=tax]").click()
    expect(waiting).to_have_text("1", timeout=WAIT_MS)
    expect(manager.locator("#kpi-waiting")).to_have_text("1")
    assert manager.evaluate("window.notReloaded") is True

    kiosk.get_by_role("button", name="取消排队").click()
    expect(waiting).to_have_text("0", timeout=WAIT_MS)


def test_kiosk_explains_a_denied_camera(
    live_server: LiveServer, pages: Pages, playwright_instance: Playwright
) -> None:
    world = make_world(live_server, pages)
    open_console(pages.new(), available=False)
    # Fake devices but no auto-accepted prompt and no granted permission: the user "denied".
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=args)
    try:
        kiosk = browser.new_context(base_url=live_server.url).new_page()
        open_kiosk(kiosk, world.terminal_tokens["T1"])
        kiosk.get_by_role("button", name="English").click()
        kiosk.locator(".queue-btn[data-queue=tax]").click()
        expect(kiosk.locator("#message-title")).to_have_text("Camera or microphone unavailable")
        expect(kiosk.locator("#message-text")).to_contain_text("was denied")
        expect(kiosk.locator("html")).to_have_attribute("lang", "en")
    finally:
        browser.close()


def test_dashboard_shows_the_staffing_estimate(live_server: LiveServer, pages: Pages) -> None:
    world = make_world(live_server, pages, manager=True)
    open_console(pages.new(), available=False)
    kiosk = world.kiosk()
    kiosk.locator(".queue-btn[data-queue=tax]").click()
    expect(kiosk.get_by_role("button", name="取消排队")).to_be_visible(timeout=WAIT_MS)

    manager = pages.new()
    login(manager, MANAGER[0], MANAGER[1], "/manage")
    expect(manager.locator("#staffing-title")).to_have_text("Staffing estimate (today)")
    row = manager.locator("#staffing-rows tr[data-queue=tax]")
    expect(row.locator(".arrivals")).to_have_text("1", timeout=WAIT_MS)
    expect(row.locator("th")).to_have_text("Tax consultation")  # a name, not an id
    expect(row.locator(".needed")).to_have_text("—")  # nobody answered yet: no handle time
    expect(manager.locator("#staffing-rows tr[data-queue=registration]")).to_have_count(0)
