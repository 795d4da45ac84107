"""The console's own controls in real Chromium: invite a queue into the call (a session
of three: two consoles and a kiosk, everyone decoding everyone's video), transfer the
caller to a named specialist, see the visitor's document enlarged, and the calls
waiting in the console's queues.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from server.app import create_app
from tests.browser.flows import (
    SPECIALIST,
    WAIT_MS,
    Call,
    World,
    assert_video_flowing,
    login,
    make_world,
    snap,
    start_call,
    wait_js,
)
from tests.browser.live import LiveServer, Pages
from tests.helpers import add_specialist, make_settings

pytestmark = pytest.mark.browser

BOB = ("bob", "bob-registry-2026", "Bob Li")
# Three browsers and a server on 2 shared cores: a page may handle an offer many seconds
# after the server made it, so invitations ring for a minute rather than 20 s.
QUEUES = [{"id": "tax", "name": "税务咨询", "ring_timeout_s": 60},
          {"id": "registration", "name": "企业登记", "ring_timeout_s": 60}]
# Every remote party (recorders aside) of the page sends video that the page decodes.
DECODING = ("Promise.all(vwin.media.peers.filter((p) => p.direction === 'sendrecv')"
            ".map((p) => p.inboundVideo())).then((all) => all.length === {n} && "
            "all.every((v) => v.framesDecoded > {frames}))")


MESH_WAIT_MS = 60_000  # three browsers encoding and decoding two streams each on 2 cores


def all_decoding(page: Page, parties: int) -> None:
    """The page decodes video from `parties` others, and keeps decoding."""
    wait_js(page, DECODING.format(n=parties, frames=0), MESH_WAIT_MS,
            explain="vwin.media.peers.length")
    wait_js(page, DECODING.format(n=parties, frames=15), MESH_WAIT_MS)


def open_bob(world: World) -> Page:
    """Bob, registration (market regulation), on his console and available."""
    world.server.run(add_specialist(world.server.app, BOB[0], {"registration": 1},
                                    password=BOB[1], department="market_regulation",
                                    name=BOB[2]))
    page = world.pages.new()
    login(page, BOB[0], BOB[1], "/console")
    expect(page.locator("#queue-rows tr[data-queue=registration]")).to_be_visible(
        timeout=WAIT_MS)
    page.locator("#status-available").click()
    expect(page.locator("#agent-state")).to_have_attribute("data-status", "available",
                                                           timeout=WAIT_MS)
    return page


def answer_invitation(page: Page) -> None:
    offer = page.locator("#offer-panel")
    expect(offer).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#offer-invitation")).to_be_visible()
    page.locator("#accept-call").click(timeout=MESH_WAIT_MS)
    expect(page.locator("#call-panel")).to_be_visible(timeout=WAIT_MS)


@pytest.fixture
def patient_world(tmp_path: Path, pages_for: Callable[[LiveServer], Pages]) -> Iterator[World]:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}", queues=QUEUES)
    server = LiveServer(create_app(settings))
    server.start()
    yield make_world(server, pages_for(server))
    server.stop()


def test_three_party_session_started_from_the_console(
    patient_world: World, artifacts: Path
) -> None:
    world = patient_world
    bob = open_bob(world)
    call: Call = start_call(world)
    alice, kiosk = call.console, call.kiosk

    form = alice.locator("#invite-form")
    expect(form.locator("#invite-queue option[value=registration]")).to_have_count(1)
    form.locator("#invite-queue").select_option("registration")
    form.locator("#invite-send").click()
    expect(form).to_have_attribute("data-state", "ringing", timeout=WAIT_MS)
    expect(bob.locator("#offer-invitation")).to_contain_text("invites you", timeout=WAIT_MS)
    answer_invitation(bob)
    expect(form).to_have_attribute("data-state", "accepted", timeout=WAIT_MS)
    expect(alice.locator("#invite-status")).to_contain_text("joined")

    for page in (kiosk, alice, bob):
        all_decoding(page, 2)
    expect(alice.locator("#remote-tiles figure")).to_contain_text(BOB[2])
    expect(kiosk.locator("#remote-tiles figure")).to_have_count(1)
    snap(alice, artifacts, "console-three-party")

    # The visitor shows a document: both consoles say so; Alice enlarges it to read it.
    for console in (alice, bob):
        expect(console.locator("#document-notice")).to_be_hidden()
    kiosk.get_by_role("button", name="展示材料").click(timeout=MESH_WAIT_MS)
    for console in (alice, bob):
        expect(console.locator("#document-notice")).to_be_visible(timeout=MESH_WAIT_MS)
        expect(console.locator("#document-notice")).to_contain_text("showing a document")
    alice.locator("#enlarge-video").click()
    expect(alice.locator("#enlarge-video")).to_have_attribute("aria-pressed", "true")
    snap(alice, artifacts, "console-document-enlarged")
    viewport = alice.viewport_size
    assert viewport is not None
    box = alice.locator("#remote-video").bounding_box()
    assert box is not None
    assert box["width"] >= viewport["width"] * 0.95 and box["height"] >= viewport["height"] * 0.95
    alice.keyboard.press("Escape")
    expect(alice.locator("#enlarge-video")).to_have_attribute("aria-pressed", "false")
    box = alice.locator("#remote-video").bounding_box()
    assert box is not None and box["width"] < viewport["width"] * 0.8
    kiosk.get_by_role("button", name="切回摄像头").click(timeout=MESH_WAIT_MS)
    for console in (alice, bob):
        expect(console.locator("#document-notice")).to_be_hidden(timeout=MESH_WAIT_MS)


def test_transfer_to_a_named_specialist(patient_world: World) -> None:
    world = patient_world
    bob = open_bob(world)
    call = start_call(world)
    alice, kiosk = call.console, call.kiosk

    form = alice.locator("#invite-form")
    form.locator("input[name=target][value=specialist]").check()
    form.locator("#invite-specialist").fill("nobody")
    form.locator("#transfer-send").click()
    expect(form).to_have_attribute("data-state", "refused", timeout=WAIT_MS)
    expect(alice.locator("#invite-status")).to_contain_text("not logged in")

    form.locator("#invite-specialist").fill(BOB[0])
    form.locator("#transfer-send").click()
    expect(bob.locator("#offer-invitation")).to_contain_text("transfers", timeout=WAIT_MS)
    answer_invitation(bob)
    expect(alice.locator("#wrapup-panel")).to_be_visible(timeout=WAIT_MS)  # Alice has left
    expect(kiosk.locator("#specialist-name")).to_have_text(BOB[2], timeout=WAIT_MS)
    expect(kiosk.locator("#screen-call")).to_be_visible()
    all_decoding(kiosk, 1)
    assert_video_flowing(bob)


def test_console_shows_the_calls_waiting_in_its_queues(
    live_server: LiveServer, pages: Pages
) -> None:
    world = make_world(live_server, pages, terminals=("T1", "T2"))
    console = pages.new()
    login(console, SPECIALIST[0], SPECIALIST[1], "/console")
    summary = console.locator("#waiting-summary")
    expect(summary).to_have_attribute("data-waiting", "0", timeout=WAIT_MS)
    for terminal in ("T1", "T2"):
        world.kiosk(terminal).locator(".queue-btn[data-queue=tax]").click()
    expect(summary).to_have_attribute("data-waiting", "2", timeout=WAIT_MS)
    expect(summary).to_contain_text("2 calls waiting")
    first = summary.text_content()
    wait_js(console, f"document.querySelector('#waiting-summary').textContent !== {first!r}",
            explain="document.querySelector('#waiting-summary').textContent")  # it keeps counting
