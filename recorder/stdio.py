"""Run recorders in a child process driven by JSON lines on stdin/stdout.

Used by the crash test (``kill -9`` of a real recorder process) and by the CPU benchmark
(recorders measured apart from the senders). Requests and replies, one JSON object a line:

* ``{"op": "offer", "key", "directory", "session_id", "participant_id", "segment", "sdp"}``
  -> ``{"key", "answer": sdp | null, "state", "reason"}``
* ``{"op": "close", "key"}`` -> ``{"key", "manifest"}``
* ``{"op": "status"}`` -> ``{"recorders": {key: {"state", "reason"}}, "cpu_s", "rss_kb"}``
* ``{"op": "exit"}`` closes every recorder and ends the process.

A bad request gets ``{"key", "error"}``; the process keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .participant import ParticipantRecorder


class Recorder(Protocol):
    @property
    def state(self) -> Any: ...
    @property
    def reason(self) -> str | None: ...

    async def handle_offer(self, sdp: str) -> str | None: ...
    async def close(self) -> dict[str, Any]: ...


RecorderFactory = Callable[[Path, str, str, int], Recorder]


def _participant_factory(directory: Path, session: str, participant: str, segment: int) -> Recorder:
    return ParticipantRecorder(directory, session, participant, segment=segment)


def process_usage() -> dict[str, float]:
    """CPU seconds (user + system) and resident memory of this process."""
    times = os.times()
    rss_kb = 0
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    return {"cpu_s": times.user + times.system, "rss_kb": rss_kb, "time": time.time()}


class StdioServer:
    def __init__(self, factory: RecorderFactory) -> None:
        self._factory = factory
        self._recorders: dict[str, Recorder] = {}

    def _reply(self, message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def _handle(self, request: dict[str, Any]) -> bool:
        op, key = request.get("op"), str(request.get("key", ""))
        if op == "offer":
            recorder = self._factory(
                Path(request["directory"]), request["session_id"],
                request["participant_id"], int(request.get("segment", 1)),
            )
            self._recorders[key] = recorder
            answer = await recorder.handle_offer(request["sdp"])
            self._reply({"key": key, "answer": answer, "state": str(recorder.state),
                         "reason": recorder.reason})
        elif op == "close":
            manifest = await self._recorders.pop(key).close()
            self._reply({"key": key, "manifest": manifest})
        elif op == "status":
            recorders = {k: {"state": str(r.state), "reason": r.reason}
                         for k, r in self._recorders.items()}
            self._reply({"recorders": recorders, **process_usage()})
        elif op == "exit":
            for recorder in self._recorders.values():
                await recorder.close()
            return False
        else:
            raise ValueError(f"unknown op {op!r}")
        return True

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 22)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        self._reply({"ready": True, "pid": os.getpid()})
        while line := await reader.readline():
            request: Any = None
            try:
                request = json.loads(line)
                if not await self._handle(request):
                    return
            except (ValueError, KeyError, TypeError) as exc:
                self._reply({"key": None if not isinstance(request, dict)
                             else request.get("key"), "error": repr(exc)})


def main(factory: RecorderFactory = _participant_factory) -> None:
    logging.basicConfig(level=os.environ.get("VWIN_LOG_LEVEL", "WARNING"), stream=sys.stderr)
    asyncio.run(StdioServer(factory).serve())


if __name__ == "__main__":
    main()
