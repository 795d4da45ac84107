"""CPU and memory per recorded session: passthrough recorder vs aiortc's MediaRecorder.

One session = two parties (kiosk + specialist), each sending 640x480 VP8 at 15 fps and
Opus to the recorder. Feeders replay packets encoded once, so the senders cost little;
recorders run in their own process (``recorder.stdio``) and are measured there
(CPU seconds from ``os.times``, RSS from /proc). Dropped frames = sent - written, less
what aiortc's jitter buffers still hold; the kernel's UDP receive-buffer overflows over the
measured window are printed beside them (machine-wide counter). Usage::

    /tmp/venv/bin/python bench/recording_cpu.py [--sessions 1 8 16] [--seconds 15]
    /tmp/venv/bin/python bench/recording_cpu.py --modes passthrough --soak 600
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
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


class CountingTrack(MediaStreamTrack):
    """Hands a received track to MediaRecorder, counting the frames it consumes."""

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self.first: Any = None
        self.frames = 0

    async def recv(self) -> Any:
        frame, self.first = self.first, None
        if frame is None:
            frame = await self._source.recv()
        self.frames += 1
        return frame


class BaselineRecorder:
    """aiortc's MediaRecorder to MP4 (decode + x264 + AAC): what the issue measured against.

    MediaRecorder sizes its x264 stream from the first video frame, but the MP4 header
    is written at the first mux of any stream; an Opus frame muxed first freezes a 0x0
    video stream (the old baseline's kiosk files had no video). So recording starts
    only once the first video frame is decoded, with both tracks added before start.
    """

    def __init__(self, directory: Path, session: str, participant: str, segment: int) -> None:
        self.path = directory / f"{session}-{participant}-{segment}.mp4"
        self.state, self.reason = "new", None
        self._pc = RTCPeerConnection()
        self._recorder = MediaRecorder(str(self.path))
        self._tracks: list[CountingTrack] = []
        self._starting: asyncio.Task[None] | None = None

    async def handle_offer(self, sdp: str) -> str | None:
        self._pc.on("track", lambda track: self._tracks.append(CountingTrack(track)))
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        self._starting = asyncio.ensure_future(self._start())
        self.state = "connecting"
        return str(self._pc.localDescription.sdp)

    async def _start(self) -> None:
        video = next(track for track in self._tracks if track.kind == "video")
        video.first = await video._source.recv()
        for track in self._tracks:
            self._recorder.addTrack(track)
        await self._recorder.start()
        self.state = "recording"

    async def close(self) -> dict[str, Any]:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        await self._recorder.stop()
        await self._pc.close()
        self.state = "finished"
        frames = {track.kind: track.frames for track in self._tracks}
        return {"path": str(self.path), "frames": frames}


class RecorderProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, mode: str) -> RecorderProcess:
        args = ["-m", "recorder.stdio"] if mode == "passthrough" else [
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


Party = tuple[str, RTCPeerConnection, list[ReplayTrack]]


class NotRecording(RuntimeError):
    """Some party never got (or lost) its connection: the recorder did not keep up."""

    def __init__(self, summary: str, parties: list[Party]) -> None:
        super().__init__(summary)
        self.parties = parties


async def open_sessions(recorder: RecorderProcess, mode: str, sessions: int,
                        clip: Any) -> list[Party]:
    """Connect two sending parties per session and wait until every one is recorded."""
    video, audio = clip
    directory = Path(tempfile.mkdtemp(prefix=f"bench-{mode}-"))
    parties: list[Party] = []
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
    while True:
        states = (await recorder.call({"op": "status"}))["recorders"]
        if all(pc.connectionState == "connected" for _, pc, _ in parties) and all(
                state["state"] == "recording" for state in states.values()):
            return parties
        if time.monotonic() > deadline:
            senders = Counter(pc.connectionState for _, pc, _ in parties)
            recorders = Counter(state["state"] for state in states.values())
            raise NotRecording(f"after 60 s senders {dict(senders)}, "
                               f"recorders {dict(recorders)}", parties)
        await asyncio.sleep(0.2)


async def close_sessions(recorder: RecorderProcess, parties: list[Party]) -> dict[str, Any]:
    """Stop the senders, close the recorders; frames sent and written per kind."""
    for _, _pc, tracks in parties:
        for track in tracks:
            track.stop()
    await asyncio.sleep(1.5)
    sent = {"video": 0, "audio": 0}
    written = {"video": 0, "audio": 0}
    paths = []
    for key, pc, tracks in parties:
        manifest = (await recorder.call({"op": "close", "key": key}))["manifest"]
        paths.append(manifest.get("path"))
        for track in tracks:
            sent[track.kind] += track.sent
            written[track.kind] += manifest["frames"].get(track.kind, 0)
        await pc.close()
    recorder.process.stdin.close()  # type: ignore[union-attr]
    await recorder.process.wait()
    return {"sent": sent, "written": written, "paths": paths}


async def run_level(mode: str, sessions: int, seconds: float, clip: Any) -> dict[str, Any]:
    recorder = await RecorderProcess.start(mode)
    idle = await recorder.call({"op": "status"})
    try:
        parties = await open_sessions(recorder, mode, sessions, clip)
    except NotRecording as exc:
        for _, pc, _ in exc.parties:
            await pc.close()
        recorder.process.kill()
        await recorder.process.wait()
        return {"mode": mode, "sessions": sessions, "load": _load(), "failed": str(exc)}
    await asyncio.sleep(WARMUP_S)
    before = await recorder.call({"op": "status"})
    senders_before, overflows = os.times(), udp_rcvbuf_errors()
    await asyncio.sleep(seconds)
    after = await recorder.call({"op": "status"})
    senders_after = os.times()
    overflows = udp_rcvbuf_errors() - overflows
    counts = await close_sessions(recorder, parties)
    wall = after["time"] - before["time"]
    cpu = after["cpu_s"] - before["cpu_s"]
    return {
        "mode": mode, "sessions": sessions, "load": _load(),
        "cpu_pct_per_session": 100 * cpu / wall / sessions,
        "cpu_pct_total": 100 * cpu / wall,
        "udp_overflows": overflows,
        "sender_cpu_pct": 100 * (senders_after.user + senders_after.system
                                 - senders_before.user - senders_before.system) / wall,
        "rss_mb_per_session": (after["rss_kb"] - idle["rss_kb"]) / 1024 / sessions,
        **counts,
    }


def _dropped(row: dict[str, Any]) -> str:
    # aiortc's jitter buffers keep the last video frame and 4 audio packets of each party.
    tail = {"video": 1, "audio": 4}
    parties = 2 * row["sessions"]
    return " ".join(
        f"{kind} {max(row['sent'][kind] - row['written'][kind] - tail[kind] * parties, 0)}"
        f"/{row['sent'][kind]}"
        for kind in ("video", "audio")
    )


def udp_rcvbuf_errors() -> int:
    """Datagrams the kernel dropped because a UDP socket buffer was full (whole machine)."""
    with open("/proc/net/snmp", encoding="ascii") as snmp:
        header, values = [line.split() for line in snmp if line.startswith("Udp:")][:2]
    return int(values[header.index("RcvbufErrors")])


def _load() -> str:
    with open("/proc/loadavg", encoding="ascii") as loadavg:
        return " ".join(loadavg.read().split()[:3])


async def soak(mode: str, seconds: float, clip: Any) -> None:
    """One recorded session for ``seconds``: RSS of the recorder process every 10 s."""
    recorder = await RecorderProcess.start(mode)
    idle = await recorder.call({"op": "status"})
    parties = await open_sessions(recorder, mode, 1, clip)
    start = time.monotonic()
    samples: list[tuple[float, float]] = []
    print(f"\n{mode} soak, 1 session, idle recorder RSS {idle['rss_kb'] / 1024:.1f} MB, "
          f"load average {_load()}\n\n| t s | RSS MB |\n|---|---|", flush=True)
    while True:
        status = await recorder.call({"op": "status"})
        elapsed = time.monotonic() - start
        samples.append((elapsed, status["rss_kb"] / 1024))
        print(f"| {elapsed:.0f} | {samples[-1][1]:.1f} |", flush=True)
        if elapsed >= seconds:
            break
        await asyncio.sleep(min(10.0, seconds - elapsed))
    load = _load()
    counts = await close_sessions(recorder, parties)
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    slope = sum((t - mean_t) * (m - mean_m) for t, m in samples) / max(
        sum((t - mean_t) ** 2 for t, _ in samples), 1e-9)
    rss = [m for _, m in samples]
    print(f"\n| recorder | duration s | RSS start MB | RSS end MB | RSS max MB | slope MB/min "
          f"| dropped frames (video, audio) |\n|---|---|---|---|---|---|---|\n"
          f"| {mode} | {samples[-1][0]:.0f} | {rss[0]:.1f} | {rss[-1]:.1f} | {max(rss):.1f} "
          f"| {slope * 60:.3f} | {_dropped({'sessions': 1, **counts})} |\n"
          f"load average at end: {load}")


async def main(levels: list[int], seconds: float, modes: list[str]) -> None:
    clip = encode_clip()
    rows = []
    for n in levels:
        for mode in modes:
            rows.append(await run_level(mode, n, seconds, clip))
            print(rows[-1], file=sys.stderr, flush=True)
    print("\n| recorder | sessions | CPU %/session | CPU % total | RSS MB/session "
          "| dropped frames (video, audio) | UDP rcvbuf errors | senders CPU % | load average |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "failed" in row:
            print(f"| {row['mode']} | {row['sessions']} | — | — | — "
                  f"| not recording: {row['failed']} | — | — | {row['load']} |")
            continue
        print(f"| {row['mode']} | {row['sessions']} | {row['cpu_pct_per_session']:.1f} "
              f"| {row['cpu_pct_total']:.1f} | {row['rss_mb_per_session']:.1f} "
              f"| {_dropped(row)} | {row['udp_overflows']} | {row['sender_cpu_pct']:.0f} "
              f"| {row['load']} |")
    print("\nrecordings:", " ".join(sorted({str(Path(p).parent) for r in rows
                                             for p in r.get("paths", []) if p})))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--modes", nargs="+", default=["passthrough", "mediarecorder"])
    parser.add_argument("--soak", type=float, metavar="SECONDS",
                        help="record one session this long, RSS every 10 s (first --modes)")
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_baseline:
        sys.path.insert(0, str(ROOT))
        from recorder.stdio import main as serve

        serve(BaselineRecorder)
    elif options.soak:
        asyncio.run(soak(options.modes[0], options.soak, encode_clip()))
    else:
        asyncio.run(main(options.sessions, options.seconds, options.modes))
