"""Call features in real Chromium, on one recorded server: the kiosk's "show document",
the manager's side-by-side recording player, the reset long press, the joint-action panel,
a recorder's answer lost with the kiosk's socket.

The server records with its embedded `vwin recorder` child, as `vwin serve` does, so it
listens on the port its settings name (the child connects back to it). Each test uses its
own terminal so no test inherits another's kiosk state.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from playwright.sync_api import Page, WebSocketRoute, expect

from server.app import create_app
from server.recording.embedded import RECORDING
from tests.browser.flows import (
    MANAGER,
    SPECIALIST,
    WAIT_MS,
    World,
    answered,
    assert_video_flowing,
    frames_decoded,
    login,
    open_console,
    provision,
    snap,
    start_call,
    wait_js,
)
from tests.browser.live import LiveServer, Pages
from tests.cluster.procs import free_port
from tests.helpers import add_specialist, make_settings
from tests.rtc_peers import RtcClient, use_loopback_when_alone

pytestmark = pytest.mark.browser

TERMINALS = ("T1", "T2", "T3", "T4")
VIDEOS = "#recordings video"
VIDEO_STATES = (f"[...document.querySelectorAll('{VIDEOS}')].map((v) => [v.dataset.party, "
                "v.src, v.readyState, v.currentTime, v.duration, v.videoWidth, v.paused, "
                "v.error?.message])")
# The large video shows the stream received from the participant with this role.
MAIN_IS = ("document.querySelector('#remote-video').srcObject === "
           "vwin.media.peers.find((p) => p.remote.role === '{role}').remoteStream")
SHOP = ("嘉定区小王便利店", "92371000MA3MXH0E3W")  # a published sole-proprietorship USCC
STEPS = ("licence_cancelled", "tax_clearance_confirmed")


async def recorder_joined(app: web.Application) -> None:
    """Until the embedded recorder is in the pool (a call made before would go unrecorded)."""
    setup = app[RECORDING].setup
    assert setup is not None
    async with asyncio.timeout(60):
        while not await setup.pool.recorders():
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def recorded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("recorded")
    port = free_port()
    settings = make_settings(f"sqlite+aiosqlite:///{tmp / 'vwin.db'}", server={"port": port},
                             recording={"enabled": True, "dir": str(tmp / "recordings")})
    server = LiveServer(create_app(settings), port)
    server.start()
    server.run(recorder_joined(server.app), timeout=90)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(recorded_server: LiveServer) -> dict[str, str]:
    return provision(recorded_server, TERMINALS, manager=True)


@pytest.fixture
def live_server(recorded_server: LiveServer) -> LiveServer:
    """The module's server for the `pages` fixture."""
    return recorded_server


@pytest.fixture
def world(recorded_server: LiveServer, pages: Pages, tokens: dict[str, str]) -> World:
    return World(recorded_server, pages, tokens)


@pytest.fixture
def wang(recorded_server: LiveServer) -> Iterator[RtcClient]:
    """A market-regulation specialist on aiortc, available for registration."""
    use_loopback_when_alone()
    server = recorded_server

    async def open_wang() -> tuple[aiohttp.ClientSession, RtcClient]:
        token = await add_specialist(server.app, "wang", {"registration": 1},
                                     department="market_regulation")
        http = aiohttp.ClientSession()
        client = await RtcClient.open(http, token, url=f"{server.url}/ws")
        await client.available()
        return http, client

    async def close(http: aiohttp.ClientSession, client: RtcClient) -> None:
        await client.close()
        await http.close()

    http, client = server.run(open_wang())
    yield client
    server.run(close(http, client))


def test_document_shown_in_a_recorded_call_plays_back_side_by_side(
    world: World, artifacts: Path
) -> None:
    call = start_call(world, terminal="T1")
    kiosk, console = call.kiosk, call.console
    expect(kiosk.locator("#recording-notice")).to_be_visible()
    show_document_and_back(kiosk, console, artifacts)
    kiosk.get_by_role("button", name="结束通话").click()
    expect(console.locator("#wrapup-panel")).to_be_visible(timeout=WAIT_MS)

    manager = world.pages.new((1366, 900))
    login(manager, MANAGER[0], MANAGER[1], "/manage")
    session_id, spans = finished_recordings(manager)
    play_back(manager, session_id, spans, artifacts)


def show_document_and_back(kiosk: Page, console: Page, artifacts: Path) -> None:
    """The kiosk sends a document instead of its camera on the same connection."""
    sent_video = ("vwin.media.peers.find((p) => p.direction === 'sendrecv').pc.getSenders()"
                  ".find((s) => s.track?.kind === 'video').track.label")
    camera = kiosk.evaluate(sent_video)
    kiosk.evaluate("window.callPeer = vwin.media.peers.find((p) => p.direction === 'sendrecv');"
                   "window.callSdp = callPeer.pc.remoteDescription.sdp")
    kiosk.get_by_role("button", name="展示材料").click()
    expect(kiosk.get_by_role("button", name="切回摄像头")).to_be_visible(timeout=WAIT_MS)
    assert kiosk.evaluate(sent_video) != camera
    before = frames_decoded(console)
    wait_js(console, f"vwin.media.inboundVideo().then((v) => v.framesDecoded > {before} + 15)",
            explain="vwin.media.inboundVideo()")
    snap(kiosk, artifacts, "kiosk-document")
    snap(console, artifacts, "console-document")
    kiosk.get_by_role("button", name="切回摄像头").click()
    expect(kiosk.get_by_role("button", name="展示材料")).to_be_visible(timeout=WAIT_MS)
    assert kiosk.evaluate(sent_video) == camera
    assert_video_flowing(console)
    # Not renegotiated, let alone replaced: the same connection, still connected.
    assert kiosk.evaluate("vwin.media.peers.includes(callPeer) && "
                          "callPeer.pc.remoteDescription.sdp === callSdp && "
                          "callPeer.pc.connectionState === 'connected'")
    assert kiosk.locator("#media-state").text_content() == ""


def finished_recordings(manager: Page) -> tuple[str, dict[str, tuple[float, float]]]:
    """The session's id once the recorder has finished both parties' files, and each
    party's (start, end) on the session's timeline."""
    row = manager.locator("#session-rows tr").first
    manager.get_by_role("link", name="Sessions").click()
    expect(row).to_be_visible(timeout=WAIT_MS)
    session_id = row.get_attribute("data-session")
    assert session_id
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        recordings = manager.request.get(f"/api/sessions/{session_id}").json()["recordings"]
        if len(recordings) == 2 and all(r["state"] == "complete" for r in recordings):
            break
        assert time.monotonic() < deadline, recordings
        manager.wait_for_timeout(200)
    assert all(r["started_at_unix"] is not None for r in recordings), recordings  # no media
    origin = min(r["started_at_unix"] for r in recordings)
    return session_id, {r["participant_id"]: (r["started_at_unix"] - origin,
                                              r["started_at_unix"] - origin + r["duration_s"])
                        for r in recordings}


def play_back(manager: Page, session_id: str, spans: dict[str, tuple[float, float]],
              artifacts: Path) -> None:
    """Both parties play on one clock; the seek bar moves both; the access is logged."""
    ranges: list[tuple[str | None, int]] = []
    manager.on("response", lambda r: ranges.append((r.request.headers.get("range"), r.status))
               if "/api/recordings/" in r.url else None)
    manager.goto(f"/manage/sessions/{session_id}")
    player = manager.locator("#recordings")
    expect(player.locator("video")).to_have_count(2, timeout=WAIT_MS)
    player.get_by_role("button", name="Play").click()
    wait_js(manager, f"[...document.querySelectorAll('{VIDEOS}')]"
                     ".every((v) => v.currentTime > 0.5 && v.videoWidth > 0 && !v.paused)",
            explain=VIDEO_STATES)
    assert any(status == 206 and (header or "").startswith("bytes=")
               for header, status in ranges), ranges
    player.get_by_role("button", name="Pause").click()

    # Where each video is on the session's timeline: its own time plus its party's start.
    placed = (f"[...document.querySelectorAll('{VIDEOS}')].map((v) => v.readyState >= 2 && "
              f"!v.seeking ? v.currentTime + {json.dumps({p: a for p, (a, _) in spans.items()})}"
              "[v.dataset.party] : NaN)")
    both = (max(a for a, _ in spans.values()) + 0.2, min(b for _, b in spans.values()) - 0.2)
    assert both[1] - both[0] > 1.0, spans  # the call was long enough to seek in
    seek = player.get_by_role("slider", name="Position in the session")
    for target in (both[1], both[0]):
        seek.fill(f"{target:.1f}")
        wait_js(manager, f"{placed}.every((t) => Math.abs(t - {target:.1f}) < 0.3)",
                explain=VIDEO_STATES)
    positions = manager.evaluate(placed)
    assert abs(positions[0] - positions[1]) < 0.3, positions
    snap(manager, artifacts, "manage-player", full_page=True)

    access = manager.request.get(f"/api/sessions/{session_id}/recording-access").json()["access"]
    watched = {a["recording_id"] for a in access if a["username"] == MANAGER[0]}
    assert len(watched) == 2, access


def test_reset_long_press_ends_the_visit_and_forgets_the_terminal(
    world: World, artifacts: Path
) -> None:
    console = world.pages.new()
    open_console(console, available=False)  # logged in but away: the visitor waits
    waiting = console.locator("#queue-rows tr[data-queue=tax] .waiting")
    kiosk = world.kiosk("T2")
    kiosk.locator(".queue-btn[data-queue=tax]").click()
    expect(kiosk.locator("#wait-position")).to_have_text("第 1 位", timeout=WAIT_MS)
    expect(waiting).to_have_text("1", timeout=WAIT_MS)

    logo = kiosk.get_by_role("button", name="长按 3 秒重置终端")
    dialog = kiosk.get_by_role("dialog", name="重置终端？")
    logo.hover()
    kiosk.mouse.down()  # staff hold the logo for 3 s
    expect(dialog).to_be_visible(timeout=WAIT_MS)
    kiosk.mouse.up()
    snap(kiosk, artifacts, "kiosk-reset")
    dialog.get_by_role("button", name="确认重置").click()

    expect(kiosk.locator("#screen-setup")).to_be_visible(timeout=WAIT_MS)
    # The visitor's place is given up now, not after the server's resume grace (30 s).
    expect(waiting).to_have_text("0", timeout=10_000)
    kiosk.reload()  # the token is forgotten: the terminal must be set up again
    expect(kiosk.locator("#screen-setup")).to_be_visible(timeout=WAIT_MS)


def test_joint_deregistration_signed_from_the_console_panel(
    world: World, wang: RtcClient, artifacts: Path
) -> None:
    """Wang (market regulation, aiortc) answers the kiosk and invites tax; Alice's console
    (tax) joins, starts the deregistration from its panel and signs after Wang."""
    server = world.server
    console = world.pages.new()
    open_console(console)
    kiosk = world.kiosk("T3")
    kiosk.get_by_label("企业名称").fill(SHOP[0])
    kiosk.get_by_label("统一社会信用代码").fill(SHOP[1])
    kiosk.locator(".queue-btn[data-queue=registration]").click()
    call_id = server.run(wang_answers(wang))

    server.run(wang.send({"type": "call.invite", "call_id": call_id, "queue": "tax"}))
    expect(console.get_by_role("alertdialog", name="Incoming call")).to_be_visible(timeout=WAIT_MS)
    console.get_by_role("button", name="Accept").click()
    expect(console.locator("#call-panel")).to_be_visible(timeout=WAIT_MS)
    tax = console.locator("#queue-rows tr[data-queue=tax]")
    expect(tax.locator(".waiting")).to_have_text("0", timeout=WAIT_MS)
    expect(tax.locator("td").last).to_have_text("0")  # nobody free: Alice is in the call
    assert_video_flowing(console)
    # A mesh of three: each page keeps its main party large, the other specialist in a tile.
    assert console.evaluate(MAIN_IS.format(role="terminal"))
    assert kiosk.evaluate(MAIN_IS.format(role="specialist") + " && vwin.media.peers.find("
                          "(p) => p.remote.role === 'specialist').remote.id === 'specialist:wang'")
    expect(kiosk.locator("#specialist-name")).to_have_text("Wang")
    for page, other in ((console, "Wang"), (kiosk, SPECIALIST[2])):
        tile = page.locator("#remote-tiles figure")
        expect(tile).to_have_count(1)
        expect(tile).to_contain_text(other)
        wait_js(page, "document.querySelector('#remote-tiles video').videoWidth > 0")
    snap(kiosk, artifacts, "kiosk-three-party")

    panel = console.locator("#joint-panel")
    expect(panel.get_by_label("Enterprise name").first).to_have_value(SHOP[0])
    expect(panel.get_by_label("Unified social credit code")).to_have_value(SHOP[1])
    panel.get_by_label("Action", exact=True).select_option("sole_proprietor_deregistration")
    panel.get_by_role("button", name="Start action").click()
    action = panel.locator("#action-list li.joint-action")
    expect(action).to_contain_text("Sole proprietorship deregistration", timeout=WAIT_MS)
    expect(action.locator(".badge")).to_have_text("Open")
    licence, clearance = (action.locator(f"li[data-step={s}]") for s in STEPS)
    expect(licence).to_contain_text("not signed")
    expect(licence.get_by_role("button", name="Sign")).to_have_count(0)  # not tax's step

    action_id = action.get_attribute("data-action")
    server.run(wang.send({"type": "action.sign", "action_id": action_id, "step": STEPS[0]}))
    expect(licence).to_contain_text("signed by wang", timeout=WAIT_MS)
    clearance.get_by_role("button", name="Sign").click()
    expect(action.locator(".badge")).to_have_text("Completed", timeout=WAIT_MS)
    expect(clearance).to_contain_text("signed by alice")
    snap(console, artifacts, "console-joint-action", full_page=True)
    done = server.run(wang.recv("action.updated", state="completed"))
    signed = {s["id"]: s.get("signed_by") for s in done["steps"]}
    assert signed == {STEPS[0]: "wang", STEPS[1]: "alice"}


async def wang_answers(wang: RtcClient) -> str:
    """Wang accepts the kiosk's call and sends it his media; the call's id."""
    offered = await wang.recv("call.offered")
    await wang.send({"type": "call.accept", "call_id": offered["call_id"]})
    connected = await wang.recv("call.connected")
    [kiosk] = [p["id"] for p in connected["participants"] if p["role"] == "terminal"]
    await wang.call(connected["call_id"], kiosk)
    await wang.connected(kiosk)
    return str(connected["call_id"])


RECORDER_PEER = "vwin.media.peers.find((p) => p.remote.role === 'recorder')"


def _kiosk_recorded_through(world: World, route: Callable[[WebSocketRoute], None]) -> None:
    """A kiosk call whose socket goes through `route`, answered by the console: the kiosk's
    link to the recorder connects, and its side is recorded in one complete segment."""
    console = world.pages.new((1366, 768))
    open_console(console)
    kiosk = world.pages.new((1920, 1080))
    kiosk.route_web_socket("**/ws", route)
    answered(console, kiosk, world.terminal_tokens["T4"])
    wait_js(kiosk, f"{RECORDER_PEER}?.pc.connectionState === 'connected'",
            explain=f"[{RECORDER_PEER}?.pc.signalingState, {RECORDER_PEER}?.pc.connectionState]")
    assert_video_flowing(kiosk)
    kiosk.wait_for_timeout(1500)  # a second and a half of media to record
    kiosk.get_by_role("button", name="结束通话").click()
    expect(console.locator("#wrapup-panel")).to_be_visible(timeout=WAIT_MS)

    manager = world.pages.new((1366, 900))
    login(manager, MANAGER[0], MANAGER[1], "/manage")
    _, spans = finished_recordings(manager)  # one segment each, both complete
    kiosk_span = spans["terminal:T4"]
    assert kiosk_span[1] - kiosk_span[0] > 1.0, spans


def _recorder_answers(message: str | bytes) -> bool:
    return isinstance(message, str) and '"rtc.description"' in message \
        and '"recorder:' in message


def test_a_recorder_answer_lost_with_the_kiosks_socket_is_asked_for_again(
    world: World,
) -> None:
    """The kiosk offers to the recorder; the answer is lost as its socket drops (a node
    killed, a flaky park network). Resumed, the kiosk sends the same offer again and the
    recorder answers it again: the kiosk's side is recorded. (A new offer would be answered
    anew, and the first answer, relayed late, taken for it; with nothing sent again the
    kiosk's link to the recorder waited for ever, its segment empty.)"""
    dropped: list[str] = []

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)

        def to_page(message: str | bytes) -> None:
            if not dropped and _recorder_answers(message):
                dropped.append(str(message))  # lost with the socket, which closes now
                ws.close(code=1012, reason="lost")
                return
            ws.send(message)
        server.on_message(to_page)

    _kiosk_recorded_through(world, route)
    assert len(dropped) == 1


def test_a_recorder_answer_lost_on_the_way_is_asked_for_again(world: World) -> None:
    """No socket drops: the recorder's answer to the kiosk's offer is lost on the way (a
    relayed frame published while the kiosk's node was subscribing again after a Redis
    restart). The kiosk sends the same offer again (`OFFER_RESEND_MS`) and takes the answer
    to it; the first answer, come late after it, is dropped. Without the resend the kiosk's
    link waited for ever; taking the late answer failed the negotiation, and the kiosk
    offered anew: a second, empty segment."""
    held: list[str] = []

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)

        def to_page(message: str | bytes) -> None:
            if len(held) < 2 and _recorder_answers(message):
                held.append(str(message))
                if len(held) == 2:  # the answer to the offer sent again, then the first
                    ws.send(held[1])
                    ws.send(held[0])
                return
            ws.send(message)
        server.on_message(to_page)

    _kiosk_recorded_through(world, route)
    assert len(held) == 2
