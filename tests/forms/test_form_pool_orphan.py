"""A server killed with SIGKILL never shuts its form workers down: each must notice and
exit by itself (`server/forms/pool.py`), not stay behind holding its memory (the bench
day's killed node left its idle worker, 160 MB, after every run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER = """
import asyncio, os, sys
from server.forms.pool import FormPool

async def main() -> None:
    pool = FormPool(workers=1, nice=0)
    print(await pool.run(os.getpid), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""
WAIT_S = 60.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited already
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_form_worker_exits_when_its_server_is_killed() -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        worker = int(server.stdout.readline())
        assert worker != server.pid and alive(worker)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=WAIT_S)
        deadline = time.monotonic() + WAIT_S
        while alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(worker), f"form worker {worker} outlived its killed server"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
