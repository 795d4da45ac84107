"""The cluster tests' harness: a port another process takes between `free_port` and the
node's bind (the other test worker, in a CI run: `Address already in use`) is given up
for another one, not taken for a node that failed."""

from __future__ import annotations

import socket

import pytest

from tests.cluster import procs
from tests.cluster.procs import Cluster


async def test_a_port_taken_before_the_node_binds_is_given_up_for_another(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    real = procs.free_port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = int(taken.getsockname()[1])
        ports = iter([busy])
        monkeypatch.setattr(procs, "free_port", lambda: next(ports, None) or real())
        [a] = await cluster.start("a")
        assert a.port != busy and procs.PORT_TAKEN in a.output()
        assert await cluster.health(a) == "ok"
