"""The live server (app in a background thread and loop) and the page opener.

Playwright's sync API drives the browser from the test thread, so the aiohttp
app (built by `create_app`) gets a thread and event loop of its own;
`LiveServer.run` executes set-up coroutines (accounts, terminals) on that loop,
where the app's database lives.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from aiohttp import web
from playwright.sync_api import Browser, BrowserContext, Page

T = TypeVar("T")

START_TIMEOUT_S = 30.0


class LiveServer:
    """The app served on 127.0.0.1 from a background thread.

    `port` 0 picks a free one; an app with recording passes the port its settings name,
    since the embedded recorder connects back to `[server] port`.
    """

    def __init__(self, app: web.Application, port: int = 0) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = port
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="live-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise TimeoutError("the server did not start")
        if self._error is not None:
            raise self._error

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the server's loop (the app's database lives there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(START_TIMEOUT_S)

    async def _cancel_leftovers(self) -> None:
        tasks = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start_site())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            self.loop.run_forever()
        finally:
            # In this thread: the test thread has Playwright's loop running.
            self.loop.run_until_complete(self._cancel_leftovers())
            self.loop.close()

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])


class Served(Protocol):
    """Any server the pages can open: a LiveServer, or a `vwin serve` process."""

    @property
    def url(self) -> str: ...


class Pages:
    """Opens pages in fresh browser contexts (separate cookies and storage) and closes them."""

    def __init__(self, browser: Browser, server: Served, base_url: str | None = None) -> None:
        self.browser = browser
        self.server = server
        self.base_url = base_url or server.url
        self.contexts: list[BrowserContext] = []
        self.console_errors: list[str] = []

    def new(self, viewport: tuple[int, int] = (1366, 768), lang: str | None = "en",
            mobile: bool = False) -> Page:
        """A page in a fresh context; staff pages in `lang` (the tests' words are English),
        None for the default (Simplified Chinese). The kiosk always starts in Chinese.
        `mobile`: a phone (mobile viewport, touch)."""
        context = self.browser.new_context(
            base_url=self.base_url,
            viewport={"width": viewport[0], "height": viewport[1]},
            permissions=["camera", "microphone"],
            is_mobile=mobile,
            has_touch=mobile,
        )
        if lang is not None:
            context.add_cookies([{"name": "vwin_lang", "value": lang, "url": self.base_url}])
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))
        page.on("console", lambda msg: self._console(msg.type, msg.text))
        return page

    def _console(self, kind: str, text: str) -> None:
        if kind == "error" and "Content Security Policy" in text:
            self.console_errors.append(text)

    def close(self) -> None:
        for context in self.contexts:
            context.close()
