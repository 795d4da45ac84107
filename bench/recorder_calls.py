"""A recorder process's RSS call after call (issue 16: does a recorder grow per call?).

    python -m bench.recorder_calls [--calls 25] [--seconds 2] [--parallel 1] [--cold]
        [--trim [--trim-interval 0] [--collect-interval 1]] [--env NAME=VALUE]

One recorder process (`recorder.stdio`, with the modules `vwin recorder` has loaded), then
`--parallel` parties at a time, each sending `--seconds` of synthetic VP8 and Opus from this
process and hanging up, and another taking its place (staggered: a steady turnover), for
`--calls` rounds. Prints the recorder's RSS idle, after its start-up (warm-up and frozen
heap; none with `--cold`: the first call loads the media stack, recorder.warmup) and after
each round, and by kind of mapping (recorder.memwatch). `--trim` does after each call what
`vwin recorder` does after one (recorder.heap: a full garbage collection at most every
`--collect-interval` s, then free C heap returned at most every `--trim-interval` s; the
recorder's are 1 and 30) and counts the full collections and their time. Minutes on a
shared machine: compare runs made one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from bench.common import ROOT
from recorder.heap import COLLECT_INTERVAL_S
from recorder.memwatch import smaps_mb
from tests.recording.synthetic import flash_and_beep, wait_until

REPLY_KEY = {"status": "recorders", "offer": "answer", "close": "manifest"}


def child_code(warm: bool, trim: bool, interval: float, collect: float) -> str:
    lines = ["import asyncio, gc", "import recorder.service, server.cli  # as `vwin recorder`"]
    if warm:  # what `vwin recorder` does before it connects
        lines += ["from recorder.warmup import warm_up; asyncio.run(warm_up())",
                  "gc.collect(); gc.freeze()"]
    if trim:  # what it does after a call (`RecorderService._stop`), here after each one
        lines += ["import recorder.participant as p, recorder.heap as h",
                  f"trimmer = h.HeapTrimmer({interval}, collect=True, "
                  f"collect_interval_s={collect})",
                  "import atexit, sys, time; full = []",
                  "def timed(phase, info, at=[0.0]):",
                  "    if info['generation'] < 2: return",
                  "    if phase == 'start': at[0] = time.perf_counter(); return",
                  "    full.append(time.perf_counter() - at[0])",
                  "gc.callbacks.append(timed)",
                  "atexit.register(lambda: print(f'  full collections {len(full)}, ms: total '",
                  "    f'{1000 * sum(full):.0f}, longest {1000 * max(full, default=0):.1f}',"
                  " file=sys.stderr))",
                  "close = p.ParticipantRecorder.close",
                  "async def closed(self):",
                  "    manifest = await close(self); trimmer.trim_soon(); return manifest",
                  "p.ParticipantRecorder.close = closed"]
    lines.append("from recorder.stdio import main; main()")
    return "\n".join(lines)


class Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self._turn = asyncio.Lock()  # it answers one request at a time, in order

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        async with self._turn:
            return await self._ask(message)

    async def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        await self.proc.stdin.drain()
        while True:  # anything else on stdout (a library's print) is passed over
            try:
                reply: dict[str, Any] = json.loads(await self.proc.stdout.readline())
            except ValueError:
                continue
            if REPLY_KEY[message["op"]] in reply:
                return reply

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as status:
            kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
        return kb / 1024


async def one_call(child: Child, directory: Path, n: int, seconds: float) -> str:
    pc = RTCPeerConnection()
    tracks = flash_and_beep(time.time() + 0.5, seconds)
    for track in tracks:
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    reply = await child.ask({"op": "offer", "key": str(n), "directory": str(directory),
                             "session_id": f"s{n}", "participant_id": "kiosk", "segment": 1,
                             "sdp": pc.localDescription.sdp})
    if reply["answer"] is None:
        return f"refused: {reply['reason']}"
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["answer"], type="answer"))
    await wait_until(lambda: all(t.readyState == "ended" for t in tracks), seconds + 30,
                     "the tracks to end")
    await asyncio.sleep(0.3)
    await pc.close()
    manifest = (await child.ask({"op": "close", "key": str(n)}))["manifest"]
    return str(manifest["state"])


async def run(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="vwin-recorder-calls-"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", child_code(not args.cold, args.trim, args.trim_interval,
                                               args.collect_interval), cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, **dict(kv.split("=", 1) for kv in args.env)})
    child = Child(proc)
    try:
        await child.ask({"op": "status"})
        rss = [child.rss_mb()]
        kinds = [smaps_mb(Path(f"/proc/{proc.pid}/smaps"))]
        states: list[str] = []

        async def party(first: int) -> None:  # one after another, `parallel` such at once
            await asyncio.sleep(first * args.seconds / args.parallel)  # staggered: a turnover
            for n in range(first, args.calls * args.parallel, args.parallel):
                states.append(await one_call(child, directory, n, args.seconds))
                if len(states) % args.parallel == 0:
                    rss.append(child.rss_mb())
                    kinds.append(smaps_mb(Path(f"/proc/{proc.pid}/smaps")))

        await asyncio.gather(*(party(i) for i in range(args.parallel)))
        per_call = (rss[-1] - rss[1]) / max(1, args.calls - 1)
        print(f"recorder ({'cold' if args.cold else 'warmed up'}"
              f"{', trimmed after each call' if args.trim else ''}): RSS MB at start "
              f"{rss[0]:.1f}, after call 1 {rss[1]:.1f}, after call {args.calls} {rss[-1]:.1f} "
              f"({per_call:+.3f} MB a call after the first); calls {dict.fromkeys(states)}")
        print("  after each call: " + " ".join(f"{mb:.1f}" for mb in rss[1:]))
        for kind in ("heap", "anon", "file"):
            print(f"  {kind}: " + " ".join(f"{k[kind]:.1f}" for k in kinds))
    finally:
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.write(b'{"op": "exit"}\n')
            await proc.stdin.drain()
            await proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--parallel", type=int, default=1,
                        help="parties recorded at once (each call: a round of them)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="in the recorder's environment (e.g. MALLOC_ARENA_MAX=2)")
    parser.add_argument("--trim-interval", type=float, default=0.0,
                        help="--trim at most this often (s; `vwin recorder`: 30)")
    parser.add_argument("--collect-interval", type=float, default=COLLECT_INTERVAL_S,
                        help="--trim's garbage collection at most this often (s)")
    parser.add_argument("--cold", action="store_true", help="no warm-up at start")
    parser.add_argument("--trim", action="store_true",
                        help="after each call what `vwin recorder` does after one")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
