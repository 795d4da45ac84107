"""Materials guidance and captured documents in real Chromium (fake camera frames).

The kiosk shows the queue's checklist while the visitor waits; in the call the console
ticks what was shown and asks the kiosk for a still, which appears in the console at
once and opens full size; the manager's session page shows both afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from server import keys
from tests.browser.flows import (
    MANAGER,
    WAIT_MS,
    assert_video_flowing,
    login,
    make_world,
    open_console,
    snap,
    wait_js,
)
from tests.browser.live import LiveServer, Pages

pytestmark = pytest.mark.browser


def test_checklist_while_waiting_then_a_capture_the_console_sees_and_the_manager_keeps(
        files_server: LiveServer, pages_for: Callable[[LiveServer], Pages],
        artifacts: Path, tmp_path: Path) -> None:
    pages = pages_for(files_server)
    world = make_world(files_server, pages, manager=True)
    console = pages.new((1366, 900))
    open_console(console)
    kiosk = world.kiosk()
    kiosk.locator(".queue-btn[data-queue=tax]").click()

    # Waiting: the tax checklist, numbered, in big type, in Chinese (English on request).
    expect(kiosk.locator("#screen-waiting")).to_be_visible(timeout=WAIT_MS)
    checklist = kiosk.locator("#materials")
    expect(checklist).to_be_visible(timeout=WAIT_MS)
    expect(checklist.locator("h2")).to_have_text("请准备以下材料")
    items = checklist.locator("li.material")
    expect(items).to_have_count(3)
    first = items.first
    expect(first.locator(".step")).to_have_text("1")
    expect(first.locator(".name")).to_have_text("营业执照（副本）")
    expect(first.locator(".note")).to_have_text("原件或加盖公章的复印件")
    expect(first.locator(".need")).to_have_text("必需")
    expect(items.nth(2).locator(".need")).to_have_text("如有请带")
    wait_js(kiosk, "document.querySelector('#materials li img.example')?.naturalWidth > 0")
    size = kiosk.evaluate("parseFloat(getComputedStyle(document.querySelector("
                          "'#materials .name')).fontSize)")
    assert size >= 28, size  # big type, read from a step back
    snap(kiosk, artifacts, "kiosk-materials-checklist-zh-CN", full_page=True)
    kiosk.get_by_role("button", name="Switch to English").click()
    expect(first.locator(".name")).to_have_text("Business licence (duplicate copy)")
    expect(checklist.locator("h2")).to_have_text("Please have these ready")
    kiosk.get_by_role("button", name="切换到中文").click()
    expect(first.locator(".name")).to_have_text("营业执照（副本）")

    # The call: the console sees the same list and ticks what was shown.
    offer = console.get_by_role("alertdialog", name="Incoming call")
    expect(offer).to_be_visible(timeout=WAIT_MS)
    console.get_by_role("button", name="Accept").click()
    expect(kiosk.locator("#screen-call")).to_be_visible(timeout=WAIT_MS)
    assert_video_flowing(console)
    ticks = console.locator("#materials-checklist li")
    expect(ticks).to_have_count(3, timeout=WAIT_MS)
    expect(ticks.first).to_contain_text("Business licence (duplicate copy)")
    console.get_by_label("Business licence (duplicate copy)").check()
    expect(ticks.first).to_have_attribute("data-saved", "true", timeout=WAIT_MS)

    # A joint action started in the call adds its own items to the checklist.
    console.locator("#action-type").select_option("sole_proprietor_deregistration")
    console.locator("#action-name").fill("嘉定面包店")
    console.locator("#action-uscc").fill("91310115591693856A")
    console.get_by_role("button", name="Start action").click()
    added = console.locator("#materials-checklist li[data-item=deregistration_application]")
    expect(added).to_contain_text("Application for deregistration", timeout=WAIT_MS)
    expect(ticks).to_have_count(5)  # the licence and ID card are listed once
    expect(console.get_by_label("Business licence (duplicate copy)")).to_be_checked()

    # A capture: the console asks, the kiosk takes a still, the console shows it.
    console.get_by_role("button", name="Ask the kiosk for a photo").click()
    expect(kiosk.locator("#capture-state")).to_have_text("材料照片已发送给专员",
                                                          timeout=WAIT_MS)
    thumb = console.locator("#document-gallery li img")
    expect(thumb).to_have_count(1, timeout=WAIT_MS)
    wait_js(console, "document.querySelector('#document-gallery img')?.naturalWidth > 0")
    console.locator("#document-gallery button").click()
    viewer = console.locator("#document-viewer")
    expect(viewer).to_be_visible()
    wait_js(console, "document.querySelector('#document-full').naturalWidth > 0")
    console.get_by_role("button", name="Zoom in").click()
    expect(viewer).to_have_attribute("data-zoom", "1.5")
    wide = console.evaluate("document.querySelector('#document-full').getBoundingClientRect()"
                            ".width >= 1.45 * document.querySelector('.viewer-body').clientWidth")
    assert wide  # zoomed past the frame: it scrolls
    snap(console, artifacts, "console-document-viewer")
    console.get_by_role("button", name="Close").click()

    db = files_server.app[keys.DB]
    [document] = files_server.run(db.list_documents())
    stored = tmp_path / "recordings" / document.path
    with Image.open(io.BytesIO(stored.read_bytes())) as image:
        assert image.size == (document.width, document.height)
        assert image.width >= 320 and not image.getexif()
        print(f"kiosk still: {document.kind} {image.width}x{image.height}, "
              f"{document.size_bytes} bytes")
    session_id = document.session_id

    kiosk.get_by_role("button", name="结束通话").click()
    expect(console.locator("#wrapup-panel")).to_be_visible(timeout=WAIT_MS)

    # Afterwards the manager sees the ticks and the document beside the recordings.
    manager = pages.new((1366, 900))
    login(manager, MANAGER[0], MANAGER[1], "/manage")
    manager.goto(f"/manage/sessions/{session_id}")
    shown = manager.locator("#session-materials li[data-item=business_licence]")
    expect(shown).to_have_attribute("data-shown", "true", timeout=WAIT_MS)
    expect(shown).to_contain_text("Business licence (duplicate copy)")
    expect(shown).to_contain_text("Alice Wang")
    link = manager.locator(f"#session-documents li[data-document={document.id}] a")
    expect(link).to_have_attribute("href", f"/api/documents/{document.id}")
    wait_js(manager, "document.querySelector('#session-documents img')?.naturalWidth > 0")
    full = manager.request.get(f"/api/documents/{document.id}")
    assert full.ok and full.headers["content-type"] == f"image/{document.kind}"
    snap(manager, artifacts, "manage-session-documents", full_page=True)
