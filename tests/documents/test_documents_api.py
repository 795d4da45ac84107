"""Captured documents: upload in a call, metadata dropped, refusals, who may add and read."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image, PngImagePlugin

from server import keys
from tests.documents.conftest import files_under, licence_photo, png_photo
from tests.helpers import add_terminal, bearer, connect, quick_specialist

JPEG = {"Content-Type": "image/jpeg"}


async def upload(client: Any, token: str, session_id: str, body: bytes,
                 content_type: str = "image/jpeg") -> Any:
    return await client.post(f"/api/sessions/{session_id}/documents", data=body,
                             headers=bearer(token) | {"Content-Type": content_type})


async def test_a_kiosk_still_reaches_everyone_without_its_exif(
        client: Any, call: Any, recording_dir: Path) -> None:
    photo = licence_photo()
    with Image.open(io.BytesIO(photo)) as sent:  # the test image does carry GPS and camera
        assert sent.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert sent.getexif()[ExifTags.Base.Make] == "DocCam"
    await call.agent.send({"type": "document.request", "call_id": call.call_id})
    asked = await call.kiosk.recv("document.request")
    assert asked == {"type": "document.request", "call_id": call.call_id,
                     "from": call.agent_id}

    resp = await upload(client, call.kiosk_token, call.session_id, photo)
    assert resp.status == 201, await resp.text()
    stored = (await resp.json())["document"]
    for peer in (call.agent, call.kiosk):
        added = await peer.recv("document.added")
        assert added["call_id"] == call.call_id
        assert added["document"] == {k: stored[k] for k in ("id", "kind", "sha256", "width",
                                                              "height")}
    assert (stored["kind"], stored["width"], stored["height"]) == ("jpeg", 640, 400)

    got = await client.get(f"/api/documents/{stored['id']}", headers=bearer(call.agent_token))
    assert got.status == 200 and got.content_type == "image/jpeg"
    data = await got.read()
    assert hashlib.sha256(data).hexdigest() == stored["sha256"]
    with Image.open(io.BytesIO(data)) as back:
        exif = back.getexif()
        assert not exif.get_ifd(ExifTags.IFD.GPSInfo) and ExifTags.Base.Make not in exif
        assert len(exif) == 0 and "exif" not in back.info
        assert back.size == (640, 400)
        red = back.convert("RGB").getpixel((640 - 100, 400 - 100))
        assert isinstance(red, tuple) and red[0] > 150 and red[1] < 60  # the seal is there
    [on_disk] = files_under(recording_dir)
    assert on_disk.parent.name == call.session_id  # the session's folder of the recordings
    assert on_disk.read_bytes() == data


async def test_the_specialist_may_upload_a_png_still_of_the_received_video(
        client: Any, call: Any) -> None:
    resp = await upload(client, call.agent_token, call.session_id, png_photo(), "image/png")
    assert resp.status == 201, await resp.text()
    document = (await resp.json())["document"]
    assert (document["kind"], document["width"], document["height"]) == ("png", 300, 200)
    assert document["added_by"] == call.agent_id
    assert (await call.kiosk.recv("document.added"))["document"]["id"] == document["id"]


async def test_a_png_comes_back_without_its_text_exif_and_colour_profile(
        client: Any, call: Any) -> None:
    tags = Image.Exif()
    tags[ExifTags.Base.Make] = "DocCam"
    text = PngImagePlugin.PngInfo()
    text.add_text("Location", "31.38N 121.26E")
    source = io.BytesIO()
    Image.new("RGB", (200, 120), "navy").save(source, "PNG", exif=tags, pnginfo=text,
                                               icc_profile=b"not-really-icc" * 8)
    resp = await upload(client, call.kiosk_token, call.session_id, source.getvalue(),
                        "image/png")
    assert resp.status == 201, await resp.text()
    got = await client.get(f"/api/documents/{(await resp.json())['document']['id']}",
                           headers=bearer(call.agent_token))
    with Image.open(io.BytesIO(await got.read())) as back:
        assert back.format == "PNG" and back.size == (200, 120)
        assert back.info == {} and len(back.getexif()) == 0


def truncated_jpeg() -> bytes:
    whole = licence_photo(exif=False)
    return whole[: len(whole) // 2]


PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


@pytest.mark.parametrize(("body", "content_type"), [
    (PDF, "image/jpeg"),  # a PDF renamed .jpg
    (truncated_jpeg(), "image/jpeg"),
    (b"GIF89a" + bytes(100), "image/jpeg"),
    (licence_photo(exif=False), "application/pdf"),
])
async def test_what_is_not_a_whole_jpeg_or_png_is_refused_with_415(
        client: Any, call: Any, recording_dir: Path, body: bytes, content_type: str) -> None:
    resp = await upload(client, call.kiosk_token, call.session_id, body, content_type)
    assert resp.status == 415, await resp.text()
    assert (await resp.json())["error"] in ("not_an_image", "unsupported_media_type")
    assert files_under(recording_dir) == []
    assert await client.server.app[keys.DB].list_documents(call.session_id) == []


async def test_an_oversize_upload_gets_413_and_leaves_nothing_on_disk(
        client: Any, call: Any, recording_dir: Path) -> None:
    big = licence_photo(exif=False, size=(2400, 1600)) + bytes(70 * 1024)
    assert len(big) > 64 * 1024
    resp = await upload(client, call.kiosk_token, call.session_id, big)
    assert resp.status == 413, await resp.text()

    async def chunks() -> Any:  # no Content-Length: the limit holds while reading
        for start in range(0, len(big), 8192):
            yield big[start:start + 8192]

    resp = await client.post(f"/api/sessions/{call.session_id}/documents", data=chunks(),
                             headers=bearer(call.kiosk_token) | JPEG)
    assert resp.status == 413, await resp.text()
    assert files_under(recording_dir) == []
    assert await client.server.app[keys.DB].list_documents(call.session_id) == []


async def test_a_terminal_cannot_add_to_another_terminals_session(
        client: Any, call: Any, recording_dir: Path) -> None:
    other = await add_terminal(client.server.app, "T2")
    resp = await upload(client, other, call.session_id, licence_photo())
    assert resp.status == 404, await resp.text()
    stranger = await quick_specialist(client.server.app, "bob", {"tax": 1})
    resp = await upload(client, stranger, call.session_id, licence_photo())
    assert resp.status == 403, await resp.text()
    resp = await upload(client, "vwt_not-a-real-token", call.session_id, licence_photo())
    assert resp.status == 401
    resp = await upload(client, call.kiosk_token, "no-such-session", licence_photo())
    assert resp.status == 404
    assert files_under(recording_dir) == []


async def test_after_the_call_managers_read_documents_and_every_fetch_is_logged(
        client: Any, call: Any, manager: str) -> None:
    resp = await upload(client, call.kiosk_token, call.session_id, licence_photo())
    document = (await resp.json())["document"]
    await call.agent.send({"type": "call.hangup", "call_id": call.call_id})
    await call.kiosk.recv("call.ended")
    resp = await upload(client, call.kiosk_token, call.session_id, licence_photo())
    assert resp.status == 409  # no capture once the call is over
    late = await client.get(document["url"], headers=bearer(call.agent_token))
    assert late.status == 404  # the specialist: during the call only
    kiosk = await client.get(document["url"], headers=bearer(call.kiosk_token))
    assert kiosk.status == 401  # a terminal never reads documents back

    got = await client.get(document["url"], headers=bearer(manager))
    assert got.status == 200 and hashlib.sha256(await got.read()).hexdigest() == \
        document["sha256"]
    detail = await (await client.get(f"/api/sessions/{call.session_id}",
                                     headers=bearer(manager))).json()
    assert [d["id"] for d in detail["documents"]] == [document["id"]]
    access = await (await client.get(f"/api/sessions/{call.session_id}/document-access",
                                     headers=bearer(manager))).json()
    assert [(a["document_id"], a["username"]) for a in access["access"]] == [
        (document["id"], "boss")]


async def test_document_request_only_from_a_specialist_in_the_call(
        client: Any, call: Any) -> None:
    await call.kiosk.send({"type": "document.request", "call_id": call.call_id})
    assert (await call.kiosk.error())["code"] == "forbidden"
    other = await connect(client, await quick_specialist(client.server.app, "bob", {"tax": 1}))
    await other.send({"type": "document.request", "call_id": call.call_id})
    assert (await other.error())["code"] == "not_in_call"
