"""A process whose timer handlers never finish: `test_timer_lease.py` kills it (-9) mid-handler.

    python -m tests.cluster.timer_victim REDIS_URL KEY_PREFIX LEASE_S

Prints `running <kind>` when a handler starts.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from server.cluster.backends import connect_redis
from server.cluster.scheduler import RedisScheduler

OWNER = "victim"


async def main(url: str, prefix: str, lease_s: float) -> None:
    client = connect_redis(url, f"{prefix}:{OWNER}")

    async def hang(kind: str, payload: dict[str, Any]) -> None:
        del payload
        print("running", kind, flush=True)
        await asyncio.Event().wait()

    scheduler = RedisScheduler(client, prefix, owner=OWNER, lease_s=lease_s, handler=hang)
    scheduler.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
