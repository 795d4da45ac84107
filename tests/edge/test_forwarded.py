"""Behind a reverse proxy: only `[server] trusted_proxies` are believed about the client
(`X-Forwarded-For`) and the scheme (`X-Forwarded-Proto`). Login throttling counts the
forwarded client; HTTPS seen through the proxy makes cookies Secure and sends HSTS."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from server.edge import client_address
from tests.helpers import QUICK_PASSWORD, quick_manager

PROXY = {"trusted_proxies": ["127.0.0.1"]}


async def _fail_logins(client: Any, forwarded_for: str, times: int) -> list[int]:
    statuses = []
    for i in range(times):
        r = await client.post("/api/login", headers={"X-Forwarded-For": forwarded_for},
                              json={"username": f"nobody{forwarded_for}{i}", "password": "x"})
        statuses.append(r.status)
    return statuses


async def test_throttling_counts_the_client_a_trusted_proxy_names(
        aiohttp_client: Any, make_app: Any) -> None:
    client = await aiohttp_client(make_app(server=PROXY, auth={"max_failures_per_address": 2}))
    assert await _fail_logins(client, "203.0.113.7", 3) == [401, 401, 429]
    assert await _fail_logins(client, "203.0.113.8", 1) == [401]


async def test_untrusted_senders_cannot_pick_their_address(aiohttp_client: Any,
                                                           make_app: Any) -> None:
    client = await aiohttp_client(make_app(auth={"max_failures_per_address": 2}))
    assert await _fail_logins(client, "203.0.113.7", 2) == [401, 401]
    assert await _fail_logins(client, "203.0.113.8", 1) == [429]


@pytest.mark.parametrize(("trusted", "secure"), [(PROXY, True), ({}, False)])
async def test_https_through_a_trusted_proxy_means_secure_cookies_and_hsts(
        aiohttp_client: Any, make_app: Any, trusted: dict[str, Any], secure: bool) -> None:
    client = await aiohttp_client(make_app(server=trusted))
    await quick_manager(client.server.app, "boss")
    r = await client.post("/api/login", headers={"X-Forwarded-Proto": "https"},
                          json={"username": "boss", "password": QUICK_PASSWORD})
    assert r.status == 200
    cookies = r.headers.getall("Set-Cookie")
    assert len(cookies) == 2 and all(("Secure" in c) is secure for c in cookies), cookies
    page = await client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert ("Strict-Transport-Security" in page.headers) is secure
    plain = await client.get("/login", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in plain.headers


def test_the_client_is_the_last_hop_not_a_trusted_proxy() -> None:
    trusted = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1")]
    assert client_address("127.0.0.1", ["198.51.100.1, 10.1.1.1"], trusted) == "198.51.100.1"
    # the left-most hop is whatever the client wrote: only hops after untrusted ones count
    assert client_address("127.0.0.1", ["1.1.1.1, 198.51.100.1"], trusted) == "198.51.100.1"
    assert client_address("127.0.0.1", ["not-an-ip"], trusted) == "127.0.0.1"
    assert client_address("192.0.2.9", ["198.51.100.1"], trusted) == "192.0.2.9"


@pytest.fixture
def routing_backend() -> str:
    return "memory"  # the edge is the same whatever routes the calls
