"""The OpenAPI document: every route documented, nothing documented that is not routed, the
served document and docs/api.md in step with the code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.app import create_app
from server.http.apidoc import render
from server.http.openapi import document, documented
from tests.helpers import make_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}"))
    yield await aiohttp_client(app)


def routed(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if route.method != "HEAD" and (path.startswith("/api/") or path in ("/healthz",
                                                                             "/metrics")):
            out.add((route.method, path))
    return out


async def test_every_route_is_documented_and_nothing_else(client: Any) -> None:
    app = client.server.app
    assert routed(app) == documented()


async def test_the_served_document_and_docs_api_md_follow_the_code(client: Any) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    served = await resp.json()
    assert served["openapi"].startswith("3.1")
    assert served == document(client.server.app)
    sessions = {p["name"]: p for p in served["paths"]["/api/sessions"]["get"]["parameters"]}
    assert sessions["limit"]["schema"]["maximum"] == 500 and "cursor" in sessions
    assert served["paths"]["/api/sessions"]["get"]["x-roles"] == ["manager"]
    written = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert written == render(served), "run: python -m server.http.apidoc > docs/api.md"
