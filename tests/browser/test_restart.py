"""A server restart, as an operator does it: `vwin serve` stopped and started again on
the same port and database, with a kiosk and a console open in Chromium.

Both come back by themselves (reconnection backoff from 0.5 s capped at 5 s, jittered),
the kiosk within 6 s of the server answering again, and its `hello` offers the resume
token it had. The outage lasts until the kiosk has tried several times, so the backoff
has reached its cap when the server returns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.browser.flows import WAIT_MS, login, open_kiosk
from tests.browser.live import LiveServer, Pages
from tests.cluster.procs import free_port

pytestmark = pytest.mark.browser

VWIN = Path(sys.executable).with_name("vwin")
ROOT = Path(__file__).resolve().parents[2]
SPECIALIST = ("zhangwei", "Restart-Window-2026", "张伟")
BACK_WITHIN_S = 6.0
ATTEMPTS_WHILE_DOWN = 6  # 0.5 + 1 + 2 + 4 + 5 s at most: the backoff reaches its cap
START_TIMEOUT_S = 60.0


class ServedProcess:
    """`vwin serve --config FILE` as a child process, restartable on the same port."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.config = tmp / "vwin.toml"
        self.config.write_text(f"""
[server]
host = "127.0.0.1"
port = {self.port}
drain_timeout_s = 2

[storage]
url = "sqlite+aiosqlite:///{tmp / 'vwin.db'}"

[recording]
enabled = false
""")
        self.log = tmp / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def vwin(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run([str(VWIN), *args, "--config", str(self.config)], cwd=ROOT,
                              input=stdin.encode(), capture_output=True, timeout=60,
                              env=self._env())
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([str(VWIN), "serve", "--config", str(self.config)],
                                         cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         env=self._env())

    def wait_answering(self) -> float:
        """Poll /healthz until the server answers; returns the wall-clock time it did."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    json.load(resp)
                return time.time()
            except urllib.error.HTTPError:
                return time.time()  # answering, if not yet ready
            except (urllib.error.URLError, OSError):
                pass
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @staticmethod
    def _env() -> dict[str, str]:
        return {**{k: v for k, v in os.environ.items() if not k.startswith("VWIN_")},
                "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedProcess]:
    server = ServedProcess(tmp_path)
    server.vwin("db", "upgrade")
    server.vwin("site", "add", "park1", "--name", "嘉定工业园区", "--kind", "park")
    server.vwin("user", "add", SPECIALIST[0], "--role", "specialist", "--skills", "tax:1",
                "--name", SPECIALIST[2], stdin=SPECIALIST[1] + "\n")
    server.start()
    server.wait_answering()
    yield server
    server.stop()


def hellos(page: Page) -> list[dict[str, object]]:
    """Every `hello` the page sends, in order (recorded from Playwright's socket events)."""
    sent: list[dict[str, object]] = []

    def watch(ws: WebSocket) -> None:
        def frame(payload: str | bytes) -> None:
            message = json.loads(payload)
            if message.get("type") == "hello":
                sent.append(message)
        ws.on("framesent", frame)

    page.on("websocket", watch)
    return sent


def mark_reconnection(page: Page) -> None:
    """The page notes the wall-clock time its signalling is open again."""
    page.evaluate("() => { vwin.signaling.on('state', (e) => { "
                  "if (e.state === 'open') window.backAt = Date.now(); }); }")


def test_kiosk_and_console_come_back_after_a_restart(
    served: ServedProcess, browser: Browser
) -> None:
    added = served.vwin("terminal", "add", "T1", "--site", "park1", "--name", "一号终端")
    token = added.split()[-1]  # the last word: the device token, shown once
    pages = Pages(browser, served)
    try:
        console = pages.new()
        login(console, SPECIALIST[0], SPECIALIST[1], "/console")
        expect(console.locator("#queue-rows tr[data-queue=tax]")).to_be_visible(timeout=WAIT_MS)
        kiosk = pages.new((1920, 1080))
        kiosk_hellos = hellos(kiosk)
        attempts: list[float] = []
        kiosk.on("websocket", lambda ws: attempts.append(time.monotonic()))
        open_kiosk(kiosk, token)
        resume = kiosk.evaluate("localStorage.getItem('vwin.resume')")
        assert resume
        mark_reconnection(kiosk)
        mark_reconnection(console)

        served.stop()
        expect(kiosk.locator("body")).to_have_attribute("data-connection", "reconnecting",
                                                        timeout=WAIT_MS)
        expect(kiosk.locator("#conn-state")).to_be_visible()
        expect(console.locator("#conn-state")).to_be_visible(timeout=WAIT_MS)
        tried = len(attempts)
        deadline = time.monotonic() + 60
        while len(attempts) < tried + ATTEMPTS_WHILE_DOWN:
            assert time.monotonic() < deadline, f"{len(attempts) - tried} attempts while down"
            kiosk.wait_for_timeout(100)
        gaps = [b - a for a, b in zip(attempts[tried:], attempts[tried + 1:], strict=False)]
        assert max(gaps) <= 5.0 + 0.5, gaps  # capped at 5 s (plus connect time)

        served.start()
        answering_at = served.wait_answering()
        expect(kiosk.locator("body")).to_have_attribute("data-connection", "open",
                                                        timeout=WAIT_MS)
        back_s = kiosk.evaluate("window.backAt") / 1000 - answering_at
        print(f"kiosk back {back_s:.2f} s after the server answered (goal {BACK_WITHIN_S} s)")
        assert back_s <= BACK_WITHIN_S
        expect(kiosk.locator("#conn-state")).to_be_hidden()
        expect(kiosk.locator("#screen-home")).to_be_visible()
        assert kiosk_hellos[-1].get("resume") == resume  # the token it had is offered

        expect(console.locator("body")).to_have_attribute("data-connection", "open",
                                                          timeout=WAIT_MS)
        console_back_s = console.evaluate("window.backAt") / 1000 - answering_at
        print(f"console back {console_back_s:.2f} s after the server answered")
        assert console_back_s <= BACK_WITHIN_S
        # Everything works again: the specialist is logged in, so the kiosk's queue is open.
        expect(kiosk.locator(".queue-btn[data-queue=tax]")).to_be_enabled(timeout=WAIT_MS)
    finally:
        pages.close()
    assert pages.console_errors == []


def test_backoff_doubles_from_half_a_second_to_five(live_server: LiveServer,
                                                     pages: Pages) -> None:
    """The delays the page would wait, read from its own module: step 0.5, 1, 2, 4, 5, 5 s;
    each drawn between half and all of its step."""
    page = pages.new()
    page.goto("/kiosk")
    delays = page.evaluate("""() => import("/static/js/signaling.js").then(({ backoffDelay }) =>
        [0, 1, 2, 3, 4, 5, 12, 100].map((n) => [backoffDelay(n, 0), backoffDelay(n, 0.999999)]))""")
    steps = [500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]
    for (low, high), step in zip(delays, steps, strict=True):
        assert low == step / 2 and step * 0.999 < high <= step
