"""Real Chromium against the real app: the server runs in its own thread and loop.

Playwright's sync API drives the browser from the test thread, so the aiohttp
app (built by `create_app` with a temporary SQLite database) gets a thread of
its own; `LiveServer.run` executes set-up coroutines (accounts, terminals) on
that loop. Debian's Chromium with fake camera and microphone, never a
downloaded browser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from server.app import create_app
from tests.browser.live import LiveServer, Pages
from tests.helpers import make_settings

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    # Chromium keeps only the last --disable-features; Playwright passes its own.
    "--disable-features=PaintHolding,WebRtcHideLocalIpsWithMdns",
]


def _live(tmp_path: Path, **sections: Any) -> Iterator[LiveServer]:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}", **sections)
    server = LiveServer(create_app(settings))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from _live(tmp_path)


@pytest.fixture
def files_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The live app with its recording tree (where documents and signed forms go) in the
    test's directory."""
    yield from _live(tmp_path, recording={"enabled": False, "dir": str(tmp_path / "recordings")})


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def pages(browser: Browser, live_server: LiveServer) -> Iterator[Pages]:
    opened = Pages(browser, live_server)
    yield opened
    opened.close()
    assert opened.console_errors == [], opened.console_errors


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def pages_for(browser: Browser) -> Iterator[Callable[[LiveServer], Pages]]:
    """Page openers for servers a test builds itself (its own settings, host or restarts)."""
    opened: list[Pages] = []

    def open_for(server: LiveServer) -> Pages:
        opened.append(Pages(browser, server))
        return opened[-1]

    yield open_for
    for each in opened:
        each.close()
    assert [e for each in opened for e in each.console_errors] == []
