"""Two real nodes sweep the same PostgreSQL database for no-shows: each booking not
arrived by the end of its window is marked once, by one node, however the sweeps overlap."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.cluster.procs import Cluster
from tests.joint.conftest import uscc

pytestmark = pytest.mark.timeout(180)
BOOKINGS = 30


class SweepingCluster(Cluster):
    """Nodes that sweep five times a second, with no grace after a slot starts."""

    def config(self, name: str, port: int) -> Path:
        path = super().config(name, port)
        path.write_text(path.read_text() + """
[appointments]
late_s = 0
no_show_check_s = 0.2
""")
        return path


@pytest.fixture
async def sweeping(tmp_path: Path, pg_url: str, key_prefix: str,
                   redis: Redis) -> AsyncIterator[Cluster]:
    del redis
    made = SweepingCluster(tmp_path, pg_url, key_prefix)
    try:
        yield made
    finally:
        await made.close()


async def test_no_show_marked_exactly_once_on_two_nodes(sweeping: Cluster) -> None:
    a, b = await sweeping.start("a", "b")
    db = await sweeping.provision()
    now = dt.datetime.now(dt.UTC)
    start = now + dt.timedelta(seconds=2)
    made = [await db.book_appointment(
        queue="tax", start=start + dt.timedelta(microseconds=i), end=start, seats=1,
        enterprise_name=f"企业{i}", enterprise_uscc=uscc(), phone=None, now=now)
        for i in range(BOOKINGS)]
    arrived = made.pop()  # one arrives in time: never a no-show
    assert await db.mark_arrived(arrived.id, "s-1", now)

    async def all_marked() -> bool:
        listed = await db.list_appointments(now, now + dt.timedelta(minutes=1))
        return sum(x.state == "no_show" for x in listed) == len(made)

    async with asyncio.timeout(60):
        while not await all_marked():
            await asyncio.sleep(0.1)
    logged = Counter(re.findall(r"appointment (ap_[0-9a-f]+) .* no_show",
                                a.output() + b.output()))
    assert logged == Counter({x.id: 1 for x in made})
    found = await db.appointment_by_code(arrived.code)
    assert found is not None and found.state == "arrived"
