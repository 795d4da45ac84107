"""Every HTTP and WebSocket input bounded and checked: lengths, ids, dates, integers, queries,
pathological JSON. Bad input is a 400 (HTTP) or an `error` (WebSocket), never a 500."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.app import create_app
from signaling import limits as lim
from tests.helpers import (
    add_terminal,
    bearer,
    connect,
    make_settings,
    quick_manager,
    quick_specialist,
)

DEEP = 5000


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}"))
    yield await aiohttp_client(app)


def api_routes(app: web.Application, method: str) -> list[str]:
    """Every /api path of `method`, an example id in place of each `{id}`, `{code}`..."""
    out = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if route.method == method and path.startswith("/api/"):
            out.append(re.sub(r"\{[a-z_]+\}", "x1", path))
    return sorted(set(out))


async def test_unknown_query_parameters_are_400_on_every_route(client: Any) -> None:
    manager = await quick_manager(client.server.app)
    paths = [*api_routes(client.server.app, "GET"), "/healthz"]
    assert len(paths) > 15
    for path in paths:
        resp = await client.get(path, params={"colour": "red"}, headers=bearer(manager))
        assert resp.status == 400, path
        assert (await resp.json())["error"] == "invalid_query", path


@pytest.mark.parametrize("path", ["/api/sessions", "/api/actions", "/api/matters"])
@pytest.mark.parametrize("value", ["²", "٣", "1e2", "5.0", " 5", "+5", "0x10", "9" * 20])
async def test_integers_are_parsed_strictly(client: Any, path: str, value: str) -> None:
    manager = await quick_manager(client.server.app)
    resp = await client.get(path, params={"limit": value}, headers=bearer(manager))
    assert resp.status == 400, (path, value)
    assert (await resp.json())["error"] == "invalid_query"


@pytest.mark.parametrize("path", ["/api/sessions", "/api/sessions.csv", "/api/actions",
                                  "/api/matters", "/api/reports", "/api/reports.csv"])
@pytest.mark.parametrize("dates", [{"from": "0001-01-01"}, {"to": "9999-12-31"},
                                   {"from": "1900-01-01T00:00:00+00:00"},
                                   {"to": "2999-01-01"}, {"from": "2026-02-30"}])
async def test_dates_within_a_sane_range(client: Any, path: str, dates: dict[str, str]) -> None:
    manager = await quick_manager(client.server.app)
    resp = await client.get(path, params=dates, headers=bearer(manager))
    assert resp.status == 400, (path, dates)
    assert (await resp.json())["error"] == "invalid_query"


@pytest.mark.parametrize(("path", "body"), [
    ("/api/sites", {"id": "s1", "name": "x" * (lim.NAME_MAX + 1), "kind": "park"}),
    ("/api/sites", {"id": "s1", "name": "", "kind": "park"}),
    ("/api/sites", {"id": "../etc", "name": "Site", "kind": "park"}),
    ("/api/sites", {"id": "a b", "name": "Site", "kind": "park"}),
    ("/api/sites", {"id": "x" * 65, "name": "Site", "kind": "park"}),
    ("/api/terminals", {"id": "T\n1", "site": "park1"}),
    ("/api/terminals", {"id": "T1", "site": "park1", "name": "x" * (lim.NAME_MAX + 1)}),
    ("/api/matters", {"enterprise": {"name": "x" * (lim.NAME_MAX + 1)}, "description": "d",
                      "class": "simple", "department": "tax"}),
    ("/api/matters", {"enterprise": {"name": "E"}, "description": "d" * (lim.NOTES_MAX + 1),
                      "class": "simple", "department": "tax"}),
    ("/api/matters", {"enterprise": {"name": "E"}, "description": "d", "class": "simple",
                      "department": "tax dept"}),
    ("/api/matters/x1", {"state": "resolved", "note": "n" * (lim.TEXT_MAX + 1)}),
    ("/api/actions/x1/reject", {"reason": "r" * (lim.TEXT_MAX + 1)}),
    ("/api/login", {"username": "u" * 65, "password": "p"}),
    ("/api/login", {"username": "u", "password": "p" * (lim.PASSWORD_MAX + 1)}),
])
async def test_body_fields_are_bounded(client: Any, path: str, body: dict[str, Any]) -> None:
    app = client.server.app
    token = await (quick_specialist(app, "rita", {}) if "reject" in path else quick_manager(app))
    method = client.patch if path.startswith("/api/matters/") else client.post
    resp = await method(path, json=body, headers=bearer(token))
    assert resp.status == 400, (path, body)
    assert (await resp.json())["error"] == "invalid_body"


async def test_pathological_json_bodies_are_400(client: Any, caplog: pytest.LogCaptureFixture
                                                ) -> None:
    manager = await quick_manager(client.server.app)
    headers = {**bearer(manager), "Content-Type": "application/json"}
    deep = '{"enterprise": {"name": "E"}, "description": "d", "class": "simple", "x": ' + \
        "[" * DEEP + "]" * DEEP + "}"
    huge = json.dumps({"id": "s1", "name": "n", "kind": "park", "pad": "x" * 200_000})
    with caplog.at_level(logging.ERROR):
        for path, data in (("/api/matters", deep), ("/api/sites", huge),
                           ("/api/sites", "[" * DEEP), ("/api/sites", '"\\ud800"')):
            resp = await client.post(path, data=data, headers=headers)
            assert resp.status == 400, path
            assert (await resp.json())["error"] == "invalid_body"
    assert not [r for r in caplog.records if r.exc_info], "bad input must not log a traceback"


async def test_pathological_json_frames_get_error_and_the_socket_stays_usable(
        client: Any, caplog: pytest.LogCaptureFixture) -> None:
    kiosk = await connect(client, await add_terminal(client.server.app, "T1"))
    manifest = ('{"type": "record.manifest", "call_id": "c", "session_id": "s", '
                '"participant_id": "p", "manifest": {"segment": 1, "state": "failed", '
                '"path": "x", "stats": {"a": ' + "[" * DEEP + "]" * DEEP + "}}}")
    frames = [manifest, "[" * 30_000, '{"type": "ping", "x": ' + "{\"a\":" * 3000 + "1" +
              "}" * 3000 + "}", "\"\\ud800\"", "{" * 60_000]
    with caplog.at_level(logging.ERROR):
        for frame in frames:
            await kiosk.ws.send_str(frame)
            err = await kiosk.error("invalid_message")
            assert "Traceback" not in err["message"]
            await kiosk.send({"type": "ping"})
            await kiosk.recv("pong")
    assert not [r for r in caplog.records if r.exc_info]


async def test_pathological_hello_is_refused_with_error(client: Any) -> None:
    ws = await client.ws_connect("/ws")
    await ws.send_str('{"type": "hello", "token": "t", "x": ' + "[" * DEEP + "]" * DEEP + "}")
    frame = json.loads((await ws.receive()).data)
    assert frame["type"] == "error" and frame["code"] == "unauthorized"


@pytest.mark.parametrize("argv", [["site", "add", "a b", "--name", "Site", "--kind", "park"],
                                  ["terminal", "add", "../T1", "--site", "park1"],
                                  ["terminal", "add", "T1", "--site", "park 1"],
                                  ["user", "add", "李", "--role", "manager"]])
def test_the_cli_takes_ids_of_the_same_pattern(argv: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main

    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "use letters, digits" in capsys.readouterr().err
