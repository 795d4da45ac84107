"""A logout on one node closes the user's console socket held by another node."""

from __future__ import annotations

from server.revocation import LOGGED_OUT
from tests.cluster.procs import Cluster
from tests.helpers import bearer, close_code


async def test_logout_on_a_closes_the_socket_on_b(cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    token = await cluster.specialist("li", {"tax": 1})
    console = await cluster.connect(b, token)
    async with cluster.http.post(a.url + "/api/logout", headers=bearer(token)) as resp:
        assert resp.status == 200
    assert await close_code(console.ws) == LOGGED_OUT
