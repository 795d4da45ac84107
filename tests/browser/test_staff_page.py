"""The Staff page in Chromium: a manager creates a specialist (one-time password shown
once), the specialist must change it before the console opens, a reset ends their console
at once (it says why), and a disable shows in the list and the audit trail."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.flows import MANAGER, WAIT_MS, login
from tests.browser.live import LiveServer, Pages
from tests.helpers import add_manager

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a fine new secret"


def change_password(page: Page, current: str) -> None:
    """Sign in with a one-time password: the password page comes first."""
    page.goto("/console")
    page.get_by_label("Username").fill("lin")
    page.get_by_label("Password").fill(current)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/password", timeout=WAIT_MS)
    expect(page.locator("#password-must")).to_be_visible()
    page.locator("#current").fill(current)
    page.locator("#new").fill(NEW_PASSWORD)
    page.locator("#repeat").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save").click()
    # Every login ended with the password: sign in again with the new one.
    page.wait_for_url(lambda url: urlsplit(url).path == "/login", timeout=WAIT_MS)
    page.get_by_label("Username").fill("lin")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/console", timeout=WAIT_MS)


def one_time_password(staff: Page) -> str:
    expect(staff.locator("#otp-box")).to_be_visible(timeout=WAIT_MS)
    value = staff.locator("#otp-value").input_value()
    assert len(value) >= 10
    return value


def test_create_reset_and_disable_a_specialist(live_server: LiveServer, pages: Pages,
                                               artifacts: Path) -> None:
    live_server.run(add_manager(live_server.app, *MANAGER))
    staff = pages.new()
    staff.on("dialog", lambda dialog: dialog.accept())
    login(staff, MANAGER[0], MANAGER[1], "/manage/staff")
    expect(staff.locator("#staff-rows tr[data-username=boss]")).to_be_visible(timeout=WAIT_MS)
    staff.get_by_label("Username").fill("lin")
    staff.get_by_label("Name", exact=True).fill("林晓")
    staff.locator("#u-department").select_option("tax")
    staff.locator("#skill-tax").fill("1")
    staff.get_by_role("button", name="Create account").click()
    first = one_time_password(staff)
    row = staff.locator("#staff-rows tr[data-username=lin]")
    expect(row).to_contain_text("林晓")
    expect(row.locator(".badge")).to_have_text("Must change password")

    console = pages.new()
    change_password(console, first)
    expect(console.locator("#queue-rows tr[data-queue=tax]")).to_be_visible(timeout=WAIT_MS)
    staff.reload()
    expect(row.locator(".badge")).to_have_text("Active", timeout=WAIT_MS)

    row.get_by_role("button", name="Reset the password of 林晓").click()
    second = one_time_password(staff)
    assert second != first
    expect(console.locator("#idle-text")).to_have_text(
        "Your password was changed; sign in again.", timeout=WAIT_MS)
    expect(row.locator(".badge")).to_have_text("Must change password", timeout=WAIT_MS)

    row.get_by_role("button", name="Disable 林晓").click()
    expect(row.locator(".badge")).to_have_text("Disabled", timeout=WAIT_MS)
    expect(row.get_by_role("button", name="Enable 林晓")).to_be_visible()
    audit = staff.locator("#audit-rows")
    for change in ("Disabled", "Password reset", "Password changed", "Created"):
        expect(audit).to_contain_text(change)
    expect(audit.locator("tr").first).to_contain_text("Boss")
    staff.goto("/manage/staff?lang=zh-CN")
    expect(staff.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(staff.locator("#staff-rows tr[data-username=lin] .badge")).to_have_text(
        "已停用", timeout=WAIT_MS)
    expect(staff.locator("#audit-rows")).to_contain_text("重置密码")
    staff.screenshot(path=str(artifacts / "zh-CN-manage-staff.png"), full_page=True)
