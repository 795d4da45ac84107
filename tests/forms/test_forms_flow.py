"""Forms through the real server: presented in a call, signed at the kiosk, stored as a PDF
whose text (poppler's pdftotext) and images (pypdf) are read back, and checked by
`vwin audit verify`."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pypdf
import pytest

from server import keys
from server.app import create_app
from server.cli import main
from signaling import limits as lim
from tests.helpers import add_terminal, bearer, connect, make_settings, specialist_ready
from tests.joint.conftest import call_with, staff, uscc

DEREG = "sole_proprietor_deregistration"
ENTERPRISE = "上海嘉定新城张记面馆"
RENDER_S = 90.0  # the first form also starts a worker process and loads WeasyPrint
SIGNATURE = {"width": 600, "height": 200,
             "strokes": [[[20, 150], [80, 40], [140, 160], [200, 60]], [[260, 100], [380, 90]],
                         [[450, 120]]]}


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """The real app (SQLite, memory routing); signed forms go under tmp_path/recordings."""
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}",
                             recording={"enabled": False, "dir": str(tmp_path / "recordings")})
    yield await aiohttp_client(create_app(settings))


async def presented_form(client: Any, rita: str) -> tuple[Any, Any, dict[str, Any], str]:
    """A deregistration started in a call and its form presented: (kiosk, agent, the
    `form.presented` frame, session id)."""
    kiosk, agent, call_id, session_id = await call_with(client, rita)
    await agent.send({"type": "action.start", "call_id": call_id, "action": DEREG,
                      "enterprise": {"name": ENTERPRISE, "uscc": uscc()}})
    action_id = (await agent.recv("action.updated"))["action_id"]
    await kiosk.send({"type": "form.present", "call_id": call_id, "action_id": action_id})
    await kiosk.error("forbidden")
    await agent.send({"type": "form.present", "call_id": call_id, "action_id": action_id})
    presented = await kiosk.recv("form.presented", timeout=RENDER_S)
    assert await agent.recv("form.presented") == presented
    assert presented["action_id"] == action_id and presented["call_id"] == call_id
    return kiosk, agent, presented, session_id


def _verify(client: Any, tmp_path: Path) -> int:
    settings = client.server.app[keys.SETTINGS]
    config = tmp_path / "verify.toml"
    config.write_text(f'[storage]\nurl = "{settings.storage.url}"\n'
                      f'[recording]\ndir = "{settings.recording.dir}"\n')
    return main(["audit", "verify", "--config", str(config)])


async def test_the_kiosk_signs_once_and_audit_verify_checks_the_pdf(
        client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = client.server.app
    rita = await staff(app, "rita", "market_regulation", {"registration": 1})
    tom = await staff(app, "tom", "tax", {"tax": 1})
    lee = await staff(app, "lee", "culture", {"tax": 1})
    boss = await staff(app, "boss", None, role="manager")
    kiosk, agent, presented, session_id = await presented_form(client, rita)
    form_id = presented["form_id"]

    pages = await client.get(presented["url"])
    html = await pages.text()
    assert pages.status == 200 and ENTERPRISE in html and uscc() in html
    assert "sandbox" in pages.headers["Content-Security-Policy"]
    assert (await client.get(f"/api/forms/{form_id}/pages?key=guess")).status == 404

    stranger = await connect(client, await add_terminal(app, "T9"))
    for outsider in (stranger, agent):
        await outsider.send({"type": "form.sign", "form_id": form_id, "signature": SIGNATURE})
        await outsider.error("not_signer")
    too_long = {**SIGNATURE, "strokes": [[[1, 1]] * (lim.SIGNATURE_POINTS_MAX + 1)]}
    await kiosk.send({"type": "form.sign", "form_id": form_id, "signature": too_long})
    await kiosk.error("invalid_message")
    too_many = {**SIGNATURE, "strokes": [[[1, 1]] * 1500] * 3}
    await kiosk.send({"type": "form.sign", "form_id": form_id, "signature": too_many})
    await kiosk.error("signature_too_large")
    outside = {**SIGNATURE, "strokes": [[[10, 10], [601, 10]]]}
    await kiosk.send({"type": "form.sign", "form_id": form_id, "signature": outside})
    await kiosk.error("invalid_signature")
    folder = tmp_path / "recordings"
    assert not folder.exists() or not any(folder.rglob("*.pdf"))
    resp = await client.get(f"/api/forms/{form_id}", headers=bearer(boss))
    assert resp.status == 409  # not signed yet

    await kiosk.send({"type": "form.sign", "form_id": form_id, "signature": SIGNATURE})
    signed = await kiosk.recv("form.signed", timeout=RENDER_S)
    assert await agent.recv("form.signed") == signed
    (pdf,) = folder.rglob("*.pdf")
    assert pdf.parent.name == session_id
    assert hashlib.sha256(pdf.read_bytes()).hexdigest() == signed["sha256"]
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert ENTERPRISE in text and uscc() in text and "Rita" in text
    reader = pypdf.PdfReader(pdf)
    assert len(reader.pages) == 2
    (image,) = reader.pages[1].images
    assert image.image is not None and image.image.size == (900, 300)  # the 600 x 200 pad

    await kiosk.send({"type": "form.sign", "form_id": form_id, "signature": SIGNATURE})
    await kiosk.error("form_already_signed")
    assert len(list(folder.rglob("*.pdf"))) == 1

    for token in (boss, tom):
        resp = await client.get(f"/api/forms/{form_id}", headers=bearer(token))
        assert resp.status == 200 and await resp.read() == pdf.read_bytes()
        assert resp.headers["Content-Disposition"].startswith("attachment")
        assert resp.content_type == "application/pdf"
    assert (await client.get(f"/api/forms/{form_id}", headers=bearer(lee))).status == 404
    listed = await (await client.get(f"/api/sessions/{session_id}/forms",
                                     headers=bearer(boss))).json()
    assert [(f["id"], f["state"], f["sha256"]) for f in listed["forms"]] == [
        (form_id, "signed", signed["sha256"])]
    detail = await (await client.get(f"/api/actions/{presented['action_id']}",
                                     headers=bearer(boss))).json()
    audit = [(e["event"], e["data"].get("sha256")) for e in detail["audit"]]
    assert ("form_signed", signed["sha256"]) in audit

    assert await asyncio.to_thread(_verify, client, tmp_path) == 0
    assert "1 signed form(s) match" in capsys.readouterr().out
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    pdf.write_bytes(bytes(data))
    assert await asyncio.to_thread(_verify, client, tmp_path) == 1
    err = capsys.readouterr().err
    assert form_id in err and str(pdf) in err and "ALTERED" in err
    pdf.unlink()
    assert await asyncio.to_thread(_verify, client, tmp_path) == 1
    assert "MISSING" in capsys.readouterr().err


async def test_the_visitor_declines(client: Any) -> None:
    app = client.server.app
    rita = await staff(app, "rita", "market_regulation", {"registration": 1})
    boss = await staff(app, "boss", None, role="manager")
    kiosk, agent, presented, _ = await presented_form(client, rita)
    await kiosk.send({"type": "form.decline", "form_id": presented["form_id"]})
    declined = await agent.recv("form.declined")
    assert declined == await kiosk.recv("form.declined")
    assert declined["form_id"] == presented["form_id"]
    await kiosk.send({"type": "form.sign", "form_id": presented["form_id"],
                      "signature": SIGNATURE})
    await kiosk.error("form_declined")
    resp = await client.get(f"/api/forms/{presented['form_id']}", headers=bearer(boss))
    assert resp.status == 409


async def test_a_kiosk_away_as_its_form_was_signed_hears_it_when_it_comes_back(
        client: Any) -> None:
    """The park's network drops the kiosk just after the visitor signs: the signing goes on,
    the specialist hears it, and the kiosk, resumed, hears it too instead of waiting on
    "signing..." until the call ends."""
    app = client.server.app
    rita = await staff(app, "rita", "market_regulation", {"registration": 1})
    agent = await specialist_ready(client, rita)
    token = await add_terminal(app, "T1")
    kiosk = await connect(client, token)
    await kiosk.send({"type": "call.request", "queue": "registration"})
    queued = await kiosk.recv("call.queued")
    await agent.recv("call.offered", call_id=queued["call_id"])
    await agent.send({"type": "call.accept", "call_id": queued["call_id"]})
    call_id = (await kiosk.recv("call.connected"))["call_id"]
    await agent.send({"type": "action.start", "call_id": call_id, "action": DEREG,
                      "enterprise": {"name": ENTERPRISE, "uscc": uscc()}})
    action_id = (await agent.recv("action.updated"))["action_id"]
    await agent.send({"type": "form.present", "call_id": call_id, "action_id": action_id})
    presented = await kiosk.recv("form.presented", timeout=RENDER_S)
    await kiosk.send({"type": "form.sign", "form_id": presented["form_id"],
                      "signature": SIGNATURE})
    resume = kiosk.welcome["resume"]
    await kiosk.ws.close()
    signed = await agent.recv("form.signed", timeout=RENDER_S)
    assert signed["form_id"] == presented["form_id"]
    kiosk = await connect(client, token, resume=resume)
    assert kiosk.welcome["resumed"] is True
    assert (await kiosk.recv("call.connected"))["call_id"] == call_id
    assert await kiosk.recv("form.signed") == signed
