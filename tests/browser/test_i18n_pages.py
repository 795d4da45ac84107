"""Every page in Simplified Chinese (the default) and in English, at 1366x768 and 1920x1080.

One app, seeded once through the real protocol with a finished consultation (chat, a
joint action signed by one department, a pending matter, wrap-up, rating), so the
manager pages show rows. Each page must say only words of its language's catalog
(tests/browser/i18n_check.py states the rule), set `<html lang>`, keep its top bar on
one line and every table inside its box. The zh-CN pages are saved in test-artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.sync_api import Browser, Page, expect

from server import keys
from server.app import create_app
from server.i18n import LANGUAGES
from tests.browser.flows import WAIT_MS, wait_js
from tests.browser.i18n_check import COLLECT_JS, LanguageCheck, language_checks
from tests.browser.live import LiveServer, Pages
from tests.helpers import (
    add_terminal,
    connect,
    issue_token,
    make_settings,
    quick_manager,
    quick_specialist,
    specialist_ready,
)

pytestmark = pytest.mark.browser

USCC = "91310115591693856A"
VIEWPORTS = [(1366, 768), (1920, 1080)]

LAYOUT_JS = (Path(__file__).parent / "layout_check.js").read_text(encoding="utf-8")


@dataclass
class Seeded:
    server: LiveServer
    manager_token: str
    specialist_token: str
    kiosk_token: str
    session_id: str


async def _seed(app: Any, url: str) -> tuple[str, str, str, str]:
    """A consultation from start to rating, through the WebSocket and HTTP API."""
    agent_token = await quick_specialist(app, "lin", {"tax": 1, "registration": 1}, name="林晓",
                                         department="market_regulation")
    manager_token = await quick_manager(app, "zhou", name="周主任")
    await app[keys.DB].add_site("jd-newcity", "嘉定新城市场监管所", "market_office")
    kiosk_token = await add_terminal(app, "jd-newcity-1", site_id="jd-newcity")
    async with aiohttp.ClientSession(base_url=url) as http:
        agent = await specialist_ready(http, agent_token)
        kiosk = await connect(http, kiosk_token)
        await kiosk.send({"type": "call.request", "queue": "tax",
                          "enterprise": {"name": "嘉定面包店", "uscc": USCC}})
        queued = await kiosk.recv("call.queued")
        offer = await agent.recv("call.offered", call_id=queued["call_id"])
        await agent.send({"type": "call.accept", "call_id": offer["call_id"],
                          "offer": offer["offer"]})
        call = await kiosk.recv("call.connected")
        await agent.recv("call.connected")
        call_id, session_id = call["call_id"], call["session_id"]
        await kiosk.send({"type": "chat.send", "call_id": call_id, "text": "您好，我想注销个体户"})
        await agent.recv("chat.message")
        await agent.send({"type": "action.start", "call_id": call_id,
                          "action": "sole_proprietor_deregistration",
                          "enterprise": {"name": "嘉定面包店", "uscc": USCC}})
        started = await agent.recv("action.updated")
        await agent.send({"type": "action.sign", "action_id": started["action_id"],
                          "step": "licence_cancelled"})
        await agent.recv("action.updated")
        resp = await http.post("/api/matters", headers={"Authorization": f"Bearer {agent_token}"},
                               json={"enterprise": {"name": "嘉定面包店", "uscc": USCC},
                                     "description": "等待税务清税确认", "class": "general",
                                     "session_id": session_id})
        assert resp.status == 201, await resp.text()
        await agent.send({"type": "call.hangup", "call_id": call_id})
        await kiosk.recv("call.ended")
        await agent.send({"type": "session.wrapup", "session_id": session_id,
                          "outcome": "follow_up", "notes": "税务环节待确认"})
        await agent.recv("saved")
        await kiosk.send({"type": "session.rate", "session_id": session_id, "score": 5,
                          "comment": "很方便"})
        await kiosk.recv("saved")
        await agent.close()
        await kiosk.close()
    kiosk_token = await add_terminal(app, "jd-newcity-2", site_id="jd-newcity")
    return manager_token, await issue_token(app, "lin"), kiosk_token, session_id


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    path = tmp_path_factory.mktemp("i18n") / "vwin.db"
    server = LiveServer(create_app(make_settings(f"sqlite+aiosqlite:///{path}")))
    server.start()
    try:
        yield Seeded(server, *server.run(_seed(server.app, server.url)))
    finally:
        server.stop()


def _checks(app: Any) -> dict[str, LanguageCheck]:
    return language_checks(app)


def _staff_pages(session_id: str) -> list[tuple[str, str, str]]:
    """(name, path, what shows the page has its data) for the staff pages."""
    return [
        ("console", "/console", "document.querySelector('#queue-rows tr[data-queue=tax]')"),
        ("dashboard", "/manage", "document.querySelector('#live-state').dataset.state === 'live'"),
        ("sessions", "/manage/sessions",
         "document.querySelector('#session-rows tr[data-session]')"),
        ("session", f"/manage/sessions/{session_id}",
         "document.querySelectorAll('#timeline li').length > 5 && "
         "!document.querySelector('#load-status').textContent"),
        ("reports", "/manage/reports", "document.querySelector('#report-rows tr[data-key=tax]')"),
        ("actions", "/manage/actions", "document.querySelector('#action-rows tr[data-action]')"),
        ("matters", "/manage/matters", "document.querySelector('#matter-rows tr[data-matter]')"),
        ("sites", "/manage/sites", "document.querySelector('#terminal-rows tr[data-terminal]')"),
        ("staff", "/manage/staff", "document.querySelector('#staff-rows tr[data-username]')"),
    ]


def _open(pages: Pages, viewport: tuple[int, int], lang: str, token: str | None) -> Page:
    page = pages.new(viewport, lang=None)
    cookies = [{"name": "vwin_lang", "value": lang, "url": pages.server.url}]
    if token:
        cookies.append({"name": "vwin_session", "value": token, "url": pages.server.url})
    page.context.add_cookies(cookies)  # type: ignore[arg-type]
    return page


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_speaks_one_language(
        browser: Browser, seeded: Seeded, artifacts: Path, lang: str,
        viewport: tuple[int, int]) -> None:
    checks = _checks(seeded.server.app)
    pages = Pages(browser, seeded.server)
    found: dict[str, list[Any]] = {}

    def look(name: str, page: Page) -> None:
        assert page.evaluate("document.documentElement.lang") == lang, name
        strays = checks[lang].strays(page.evaluate(COLLECT_JS))
        layout = page.evaluate(LAYOUT_JS)
        if strays or layout:
            found[name] = strays + layout
        if layout:  # what it looked like, for whoever fixes it
            page.screenshot(path=str(artifacts / f"layout-{lang}-{viewport[0]}-{name}.png"),
                            full_page=True)
        if lang == "zh-CN" and viewport == VIEWPORTS[0]:
            page.screenshot(path=str(artifacts / f"zh-CN-{name}.png"), full_page=True)

    try:
        login = _open(pages, viewport, lang, None)
        login.goto("/login")
        look("login", login)

        kiosk = _open(pages, viewport, lang, None)
        kiosk.goto("/kiosk")
        expect(kiosk.locator("#screen-setup")).to_be_visible(timeout=WAIT_MS)
        # The kiosk starts in Chinese whatever the staff chose on this browser.
        assert kiosk.evaluate("document.documentElement.lang") == "zh-CN"
        if lang != "zh-CN":
            kiosk.locator("#lang-toggle").click()
        look("kiosk-setup", kiosk)
        kiosk.locator("#device-token").fill(seeded.kiosk_token)
        kiosk.locator("#setup-form button[type=submit]").click()
        expect(kiosk.locator(".queue-btn[data-queue=tax]")).to_be_visible(timeout=WAIT_MS)
        kiosk.locator("#ent-uscc").fill(USCC[:17] + "B")  # a wrong check character: the hint shows
        expect(kiosk.locator("#uscc-hint.error")).to_be_visible()
        look("kiosk-home", kiosk)
        kiosk.locator("#have-appointment").click()
        expect(kiosk.locator("#screen-appointment")).to_be_visible()
        look("kiosk-appointment", kiosk)
        kiosk.locator("#code-back").click()

        opened = {}
        for name, path, ready in _staff_pages(seeded.session_id):
            token = seeded.specialist_token if name == "console" else seeded.manager_token
            page = opened[name] = _open(pages, viewport, lang, token)
            page.goto(path)
            wait_js(page, ready, explain="document.body.innerText.slice(0, 400)")
            look(name, page)

        book = _open(pages, viewport, lang, None)  # public: no login
        book.goto("/book?queue=tax")
        wait_js(book, "document.querySelector('#day-list [role=radio]')")
        book.locator("#day-list [role=radio]").nth(1).click()
        wait_js(book, "document.querySelector('#slot-list [role=radio]')")
        look("book", book)

        # A call rings: the kiosk's waiting screen and the console's offer, then a decline.
        console = opened["console"]
        console.locator("#status-available").click()
        expect(console.locator("#agent-state")).to_have_attribute("data-status", "available",
                                                                  timeout=WAIT_MS)
        kiosk.locator("#ent-name").fill("嘉定面包店")
        kiosk.locator("#ent-uscc").fill(USCC)
        expect(kiosk.locator(".queue-btn[data-queue=tax]")).to_be_enabled(timeout=WAIT_MS)
        kiosk.locator(".queue-btn[data-queue=tax]").click()
        expect(console.locator("#offer-panel")).to_be_visible(timeout=WAIT_MS)
        expect(kiosk.locator("#screen-waiting")).to_be_visible(timeout=WAIT_MS)
        expect(kiosk.locator("#wait-position")).not_to_have_text("—", timeout=WAIT_MS)
        look("kiosk-waiting", kiosk)
        look("console-offer", console)
        console.locator("#decline-call").click()
        expect(console.locator("#idle-panel")).to_be_visible(timeout=WAIT_MS)
        kiosk.locator("#cancel-call").click()
        expect(kiosk.locator("#screen-home")).to_be_visible(timeout=WAIT_MS)
        look("console-declined", console)
        assert pages.console_errors == [], pages.console_errors
    finally:
        pages.close()
    assert found == {}, json.dumps(found, ensure_ascii=False, indent=1)


def test_staff_language_switch_is_remembered(browser: Browser, seeded: Seeded) -> None:
    """Chinese by default; the switch reloads in English, and the next page (and the next
    login) stays English."""
    pages = Pages(browser, seeded.server)
    try:
        page = pages.new((1366, 768), lang=None)
        page.goto("/login")
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        expect(page.locator("#login-form button[type=submit]")).to_have_text("登录")
        page.locator("#lang-switch").click()
        expect(page.locator("#login-form button[type=submit]")).to_have_text("Sign in",
                                                                             timeout=WAIT_MS)
        assert page.evaluate("document.documentElement.lang") == "en"
        page.context.add_cookies([{"name": "vwin_session", "value": seeded.manager_token,
                                   "url": seeded.server.url}])
        page.goto("/manage/sessions")
        expect(page.locator("h1")).to_have_text("Sessions")
        page.locator("#lang-switch").click()
        expect(page.locator("h1")).to_have_text("会话记录", timeout=WAIT_MS)
    finally:
        pages.close()
