from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.app import create_app
from tests.helpers import make_settings

pytest_plugins = ["tests.storage_fixtures", "tests.cluster.fixtures", "tests.turn.coturn"]

FIRST = ("tests/test_bench_day.py",)
"""Files run before all others: the short bench day, one test of two to three minutes that
starts processes of its own (nodes, Redis, recorders, load). xdist's own order (files with
many tests first) ran it last, alone, while the other worker idled."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first, so that the two workers end together (`make test` runs xdist with
    `--no-loadscope-reorder`, which keeps this order): `FIRST`, then the files with a
    browser or multi-process test, then the light ones. Light files last fill the end; with
    the heavy ones last, they ran together at a load of 12 and CI took longer."""
    heavy = {item.path for item in items
             if item.get_closest_marker("slow") or item.get_closest_marker("browser")}
    root = Path(__file__).parent.parent

    def tier(item: pytest.Item) -> int:
        if str(item.path.relative_to(root)) in FIRST:
            return 0
        return 1 if item.path in heavy else 2

    items.sort(key=tier)  # stable: the order within a tier is kept


@pytest.fixture(params=["memory", "redis"])
def routing_backend(request: pytest.FixtureRequest) -> str:
    """Every routing scenario runs against each backend (Redis: a fresh key prefix per test)."""
    if request.param == "redis":
        request.getfixturevalue("redis_key_prefix")
    return str(request.param)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}"


@pytest.fixture
def make_app(sqlite_url: str, routing_backend: str, request: pytest.FixtureRequest
             ) -> Callable[..., web.Application]:
    """Build the real application from the factory with test settings."""

    def build(storage_url: str | None = None, **sections: Any) -> web.Application:
        if routing_backend == "redis":
            routing = sections.setdefault("routing", {})
            routing.setdefault("key_prefix", request.getfixturevalue("redis_key_prefix"))
        return create_app(make_settings(storage_url or sqlite_url, routing_backend, **sections))

    return build


@pytest.fixture
async def app_client(aiohttp_client: Any, make_app: Callable[..., web.Application]
                     ) -> AsyncIterator[Any]:
    """A running app (SQLite, short ring timeout) and an HTTP/WebSocket client for it."""
    app = make_app()
    client = await aiohttp_client(app)
    yield client
