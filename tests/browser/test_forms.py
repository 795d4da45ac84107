"""A form signed on the kiosk's touch screen, in real Chromium: the console starts a
deregistration and presents its form; the kiosk (a touch context) shows the pages and the
visitor signs with a finger (touch events sent through the DevTools protocol) and a mouse
stroke (pointer events); the console sees `form.signed`, the manager's session page lists
the signed form, and the stored PDF holds the signature image."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pypdf
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from server import keys
from server.storage.schema import forms
from tests.browser.flows import MANAGER, WAIT_MS, login, open_console, open_kiosk, provision, snap
from tests.browser.live import LiveServer, Pages

pytestmark = pytest.mark.browser

RENDER_MS = 90_000  # the first form starts the worker process and loads WeasyPrint
SHOP = ("嘉定区小王便利店", "92371000MA3MXH0E3W")


def touch_kiosk(pages: Pages, browser: Browser, token: str) -> Page:
    """The kiosk in a context with a touch screen (Chinese, as every visitor starts)."""
    context = browser.new_context(base_url=pages.base_url, viewport={"width": 1280, "height": 900},
                                  permissions=["camera", "microphone"], has_touch=True)
    pages.contexts.append(context)
    page = context.new_page()
    page.on("pageerror", lambda exc: pages.console_errors.append(str(exc)))
    open_kiosk(page, token)
    return page


def finger_stroke(page: Page, points: list[tuple[float, float]]) -> None:
    """One stroke of a finger: touchStart, touchMoves, touchEnd, as a touch screen sends."""
    cdp = page.context.new_cdp_session(page)
    kinds = ["touchStart"] + ["touchMove"] * (len(points) - 1)
    for kind, (x, y) in zip(kinds, points, strict=True):
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def test_the_visitor_signs_the_presented_form_with_a_finger(
        files_server: LiveServer, browser: Browser, artifacts: Path, tmp_path: Path) -> None:
    tokens = provision(files_server, ("T1",), manager=True)
    pages = Pages(browser, files_server)
    try:
        console = pages.new((1366, 900))
        open_console(console)
        kiosk = touch_kiosk(pages, browser, tokens["T1"])
        kiosk.get_by_label("企业名称").fill(SHOP[0])
        kiosk.get_by_label("统一社会信用代码").fill(SHOP[1])
        kiosk.locator(".queue-btn[data-queue=tax]").tap()
        offer = console.get_by_role("alertdialog", name="Incoming call")
        expect(offer).to_be_visible(timeout=WAIT_MS)
        console.get_by_role("button", name="Accept").click()
        expect(kiosk.locator("#screen-call")).to_be_visible(timeout=WAIT_MS)

        panel = console.locator("#joint-panel")
        expect(panel.get_by_label("Unified social credit code")).to_have_value(SHOP[1])
        panel.get_by_label("Action", exact=True).select_option("sole_proprietor_deregistration")
        panel.get_by_role("button", name="Start action").click()
        present = panel.get_by_role("button", name="Ask the visitor to sign the form")
        expect(present).to_be_enabled(timeout=WAIT_MS)
        present.click()

        signing = kiosk.locator("#form-signing")
        expect(signing).to_be_visible(timeout=RENDER_MS)
        expect(signing.get_by_role("heading")).to_have_text("请阅读表单并签名")
        pages_frame = kiosk.frame_locator("#form-pages")
        expect(pages_frame.locator("h1")).to_have_text("个体工商户注销登记申请书",
                                                       timeout=WAIT_MS)
        expect(pages_frame.locator("body")).to_contain_text(SHOP[0])
        expect(pages_frame.locator("body")).to_contain_text(SHOP[1])
        sign = kiosk.get_by_role("button", name="确认签名")
        expect(sign).to_be_disabled()

        pad = kiosk.locator("#signature-pad").bounding_box()
        assert pad is not None
        x0, y0 = pad["x"], pad["y"]
        finger_stroke(kiosk, [(x0 + 40 + 12 * i, y0 + 60 + (i % 5) * 18) for i in range(25)])
        expect(sign).to_be_enabled()
        kiosk.mouse.move(x0 + 420, y0 + 40)  # a pen or mouse: pointer events
        kiosk.mouse.down()
        for i in range(1, 15):
            kiosk.mouse.move(x0 + 420 + 10 * i, y0 + 40 + 9 * i)
        kiosk.mouse.up()
        snap(kiosk, artifacts, "kiosk-form-signing")
        sign.tap()

        row = console.locator("#form-list li[data-form-state=signed]")
        expect(row).to_be_visible(timeout=RENDER_MS)
        expect(row).to_contain_text("Signed")
        expect(signing).to_be_hidden()
        assert kiosk.evaluate("document.body.dataset.formResult") == "signed"

        (pdf,) = (tmp_path / "recordings").rglob("*.pdf")
        digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
        expect(row).to_contain_text(digest[:16])
        (image,) = pypdf.PdfReader(pdf).pages[1].images
        assert image.image is not None
        inked = image.image.convert("RGBA").getchannel("A").getbbox()
        assert inked is not None  # the strokes are drawn, not an empty box
        scale = image.image.size[0] / pad["width"]  # the PNG is the pad, scaled
        assert inked[0] < 60 * scale  # the finger's stroke starts at x = 40
        assert inked[2] > 500 * scale  # the mouse's stroke ends at x = 560

        manager = pages.new((1366, 900))
        session_id = files_server.run(_session_of_the_form(files_server))
        login(manager, MANAGER[0], MANAGER[1], f"/manage/sessions/{session_id}")
        listed = manager.locator("#forms li[data-state=signed]")
        expect(listed).to_contain_text(digest, timeout=WAIT_MS)
        expect(listed.get_by_role("link", name="Download the signed form")).to_have_attribute(
            "href", f"/api/forms/{listed.get_attribute('data-form')}")
    finally:
        pages.close()
    assert pages.console_errors == []


async def _session_of_the_form(server: LiveServer) -> str:
    """The session of the one form stored."""
    db = server.app[keys.DB]
    async with db._read() as conn:
        return str((await conn.execute(sa.select(forms.c.session_id))).scalar_one())
