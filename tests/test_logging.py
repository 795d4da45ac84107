"""`[log]`: JSON lines with call ids, quiet access lines, and no secret in any line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.config import LogSettings
from server.logs import AccessLogger, VerboseAccessLogger, configure, redact
from tests.helpers import (
    QUICK_PASSWORD,
    add_terminal,
    connect,
    make_settings,
    quick_specialist,
    specialist_ready,
)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Everything logged, as `vwin serve` writes it to stderr with `[log] format = "json"`."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("aiohttp.access").level)
    stream = io.StringIO()
    configure(LogSettings(level="debug", format="json"), stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    logging.getLogger("aiohttp.access").setLevel(saved[2])


async def test_a_session_logs_json_with_ids_and_never_a_secret(
    aiohttp_client: Any, sqlite_url: str, captured: io.StringIO
) -> None:
    app = create_app(make_settings(sqlite_url, recording={
        "enabled": True, "local_recorder": False, "wait_s": 0}))
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger)  # as `vwin serve` runs it
    client = await aiohttp_client(server)
    terminal_token = await add_terminal(app, "T1")
    await quick_specialist(app, "alice", {"tax": 1})
    bad = await client.post("/api/login", json={"username": "alice", "password": "wrong-pass1"})
    assert bad.status == 401
    login = await client.post("/api/login", json={"username": "alice",
                                                  "password": QUICK_PASSWORD})
    token = (await login.json())["token"]
    ticket_resp = await client.get("/api/ws-ticket", headers={"Authorization": f"Bearer {token}"})
    ticket = (await ticket_resp.json())["ticket"]
    await client.get(f"/api/sessions?ticket={ticket}&token={token}")
    await client.get("/healthz")
    agent = await specialist_ready(client, ticket)
    kiosk = await connect(client, terminal_token)
    refused = await client.ws_connect("/ws")
    await refused.send_str(json.dumps({"type": "hello", "token": "vwt_" + "x" * 43}))
    await refused.receive()
    await kiosk.send({"type": "call.request", "queue": "tax"})
    queued = await kiosk.recv("call.queued")
    await agent.recv("call.offered")
    await agent.send({"type": "call.accept", "call_id": queued["call_id"]})
    await kiosk.recv("call.connected")
    await kiosk.send({"type": "call.hangup", "call_id": queued["call_id"]})
    await agent.recv("call.ended")

    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines and all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    unrecorded = [line for line in lines if "unrecorded" in line["message"]]
    assert unrecorded and unrecorded[0]["call_id"] == queued["call_id"], lines
    access = [line for line in lines if line["logger"] == "aiohttp.access"]
    assert {line["path"] for line in access} >= {"/api/login", "/api/ws-ticket", "/api/sessions"}
    assert not [line for line in access if line["path"].startswith("/healthz")]
    for secret in (terminal_token, token, ticket, QUICK_PASSWORD, "wrong-pass1",
                   "x" * 43, kiosk.welcome["resume"]):
        assert secret not in text, f"{secret[:6]}... is in a log line"


def test_redaction_of_what_code_might_log() -> None:
    line = ("hello token=abc123def, password: hunter2x; Authorization: Bearer eyJhbGciOi.x.y "
            "device vwt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ticket vwk_BBBBBBBBBBBB "
            "rec vwr_CCCCCCCCCC")
    out = redact(line)
    for secret in ("abc123def", "hunter2x", "eyJhbGciOi", "AAAAAAAA", "BBBBBBBB", "CCCCCCCC"):
        assert secret not in out
    assert "vwt_***" in out and "hello" in out


def test_text_format_and_access_levels() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        configure(LogSettings(level="warning", format="text", access="none"), stream)
        logging.getLogger("vwin.test").info("not shown at warning")
        logging.getLogger("vwin.test").warning("shown", extra={"call_id": "c-1"})
        assert not logging.getLogger("aiohttp.access").isEnabledFor(logging.INFO)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.getLogger("aiohttp.access").setLevel(logging.NOTSET)
    out = stream.getvalue()
    assert "not shown" not in out
    assert "WARNING vwin.test: shown [call=c-1]" in out
    assert VerboseAccessLogger.quiet == () and "/healthz" in AccessLogger.quiet
