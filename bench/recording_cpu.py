"""CPU and memory per recorded session: passthrough recorder vs aiortc's MediaRecorder.

One session = two parties (kiosk + specialist), each sending 640x480 VP8 at 15 fps and
Opus to the recorder. Feeders replay packets encoded once, so the senders cost little;
recorders run in their own process (``server.recording.stdio``) and are measured there
(CPU seconds from ``os.times``, RSS from /proc). Usage::

    /tmp/venv/bin/python bench/recording_cpu.py [--sessions 1 8 16] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRecorder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT, FPS, LOOP_S = 640, 480, 15, 10
WARMUP_S = 4.0


def encode_clip() -> tuple[list[tuple[bytes, bool]], list[bytes]]:
    """Encode LOOP_S of moving test pattern (VP8, keyframe every 2 s) and a tone (Opus)."""
    video = av.CodecContext.create("libvpx", "w")
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.time_base = Fraction(1, FPS)
    video.bit_rate = 600_000
    video.gop_size = 2 * FPS
    video.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    frames: list[tuple[bytes, bool]] = []
    for index in range(LOOP_S * FPS):
        picture = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        row = bytes((x * 3 + index * 5) % 256 for x in range(WIDTH))
        picture.planes[0].update(b"".join(row[y % 7 :] + row[: y % 7] for y in range(HEIGHT)))
        for plane in picture.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        picture.pts = index
        frames += [(bytes(p), bool(p.is_keyframe)) for p in video.encode(picture)]
    frames += [(bytes(p), bool(p.is_keyframe)) for p in video.encode(None)]
    audio = av.CodecContext.create("libopus", "w")
    audio.sample_rate, audio.layout, audio.format = 48000, "stereo", "s16"
    audio.time_base = Fraction(1, 48000)
    packets: list[bytes] = []
    tone = bytes((i * 37) % 256 for i in range(960 * 4))
    for index in range(LOOP_S * 50):
        chunk = av.AudioFrame(format="s16", layout="stereo", samples=960)
        chunk.sample_rate = 48000
        chunk.planes[0].update(tone)
        chunk.pts = index * 960
        packets += [bytes(p) for p in audio.encode(chunk)]
    return frames, packets


class ReplayTrack(MediaStreamTrack):
    """Paced replay of pre-encoded packets (aiortc packetises ``av.Packet`` as is)."""

    def __init__(self, kind: str, payloads: list[bytes], rate: int, step: int) -> None:
        super().__init__()
        self.kind = kind
        self._payloads, self._rate, self._step = payloads, rate, step
        self._start: float | None = None
        self.sent = 0

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        self._start = self._start or time.time()
        delay = self._start + self.sent * self._step / self._rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self._payloads[self.sent % len(self._payloads)])
        packet.pts = self.sent * self._step
        packet.time_base = Fraction(1, self._rate)
        self.sent += 1
        return packet


class BaselineRecorder:
    """aiortc's MediaRecorder to MP4 (decode + x264): what the issue measured against."""

    def __init__(self, directory: Path, session: str, participant: str, segment: int) -> None:
        self.path = directory / f"{session}-{participant}-{segment}.mp4"
        self.state, self.reason = "new", None
        self._pc = RTCPeerConnection()
        self._recorder = MediaRecorder(str(self.path))

    async def handle_offer(self, sdp: str) -> str | None:
        self._pc.on("track", self._recorder.addTrack)
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        await self._recorder.start()
        self.state = "recording"
        return str(self._pc.localDescription.sdp)

    async def close(self) -> dict[str, Any]:
        await self._recorder.stop()
        await self._pc.close()
        self.state = "finished"
        return {"path": str(self.path), "frames": {}}


class RecorderProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, mode: str) -> RecorderProcess:
        args = ["-m", "server.recording.stdio"] if mode == "passthrough" else [
            str(Path(__file__).resolve()), "--serve-baseline"]
        process = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=ROOT, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, limit=1 << 22,
        )
        recorder = cls(process)
        await recorder.call(None)
        return recorder

    async def call(self, message: dict[str, Any] | None) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if message is not None:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            await self.process.stdin.drain()
        reply: dict[str, Any] = json.loads(await self.process.stdout.readline())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply


async def run_level(mode: str, sessions: int, seconds: float, clip: Any) -> dict[str, Any]:
    video, audio = clip
    recorder = await RecorderProcess.start(mode)
    idle = await recorder.call({"op": "status"})
    directory = Path(tempfile.mkdtemp(prefix=f"bench-{mode}-"))
    parties: list[tuple[str, RTCPeerConnection, list[ReplayTrack]]] = []
    for session in range(sessions):
        for role in ("kiosk", "specialist"):
            key = f"s{session}-{role}"
            tracks = [ReplayTrack("video", [f for f, _ in video], 90000, 90000 // FPS),
                      ReplayTrack("audio", audio, 48000, 960)]
            pc = RTCPeerConnection()
            for track in tracks:
                pc.addTransceiver(track, direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            reply = await recorder.call({
                "op": "offer", "key": key, "directory": str(directory),
                "session_id": f"s{session}", "participant_id": role, "segment": 1,
                "sdp": pc.localDescription.sdp,
            })
            await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["answer"], type="answer"))
            parties.append((key, pc, tracks))
    deadline = time.monotonic() + 60
    while any(pc.connectionState != "connected" for _, pc, _ in parties):
        if time.monotonic() > deadline:
            raise RuntimeError("peer connections did not connect within 60 s")
        await asyncio.sleep(0.1)
    await asyncio.sleep(WARMUP_S)
    before = await recorder.call({"op": "status"})
    await asyncio.sleep(seconds)
    after = await recorder.call({"op": "status"})
    for _, _pc, tracks in parties:
        for track in tracks:
            track.stop()
    await asyncio.sleep(1.5)
    sent = {"video": 0, "audio": 0}
    written = {"video": 0, "audio": 0}
    for key, pc, tracks in parties:
        manifest = (await recorder.call({"op": "close", "key": key}))["manifest"]
        for track in tracks:
            sent[track.kind] += track.sent
            written[track.kind] += manifest["frames"].get(track.kind, 0)
        await pc.close()
    recorder.process.stdin.close()  # type: ignore[union-attr]
    await recorder.process.wait()
    wall = after["time"] - before["time"]
    cpu = after["cpu_s"] - before["cpu_s"]
    return {
        "mode": mode, "sessions": sessions,
        "cpu_pct_per_session": 100 * cpu / wall / sessions,
        "cpu_pct_total": 100 * cpu / wall,
        "rss_mb_per_session": (after["rss_kb"] - idle["rss_kb"]) / 1024 / sessions,
        "sent": sent, "written": written if mode == "passthrough" else None,
    }


def _dropped(row: dict[str, Any]) -> str:
    if row["written"] is None:
        return "n/a"
    # aiortc's jitter buffers keep the last video frame and 4 audio packets of each party.
    tail = {"video": 1, "audio": 4}
    parties = 2 * row["sessions"]
    return " ".join(
        f"{kind} {max(row['sent'][kind] - row['written'][kind] - tail[kind] * parties, 0)}"
        for kind in ("video", "audio")
    )


async def main(levels: list[int], seconds: float, modes: list[str]) -> None:
    clip = encode_clip()
    rows = [await run_level(mode, n, seconds, clip) for n in levels for mode in modes]
    print(f"\n{'recorder':<14}{'sessions':>9}{'CPU %/session':>15}{'CPU % total':>13}"
          f"{'RSS MB/session':>16}  dropped frames (video, audio)")
    for row in rows:
        print(f"{row['mode']:<14}{row['sessions']:>9}{row['cpu_pct_per_session']:>15.1f}"
              f"{row['cpu_pct_total']:>13.1f}{row['rss_mb_per_session']:>16.1f}  {_dropped(row)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--modes", nargs="+", default=["passthrough", "mediarecorder"])
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_baseline:
        sys.path.insert(0, str(ROOT))
        from server.recording.stdio import main as serve

        serve(BaselineRecorder)
    else:
        asyncio.run(main(options.sessions, options.seconds, options.modes))
