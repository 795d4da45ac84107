"""What the bench day holds the service to: its ledger against the session log.

The ledger is what the kiosks and desks saw (bench.day_load); the log is the
`sessions` projection and `session_events` in the service's database. A call is
lost when it was requested and the log has it neither served (answered),
cancelled or abandoned, nor rejected; double-assigned when two specialists were
connected to it as its first answer (an invited second department joins, it is not
offered); a mismatch is any call whose ledger and log disagree (answered or not,
by whom, the kiosk's cancel against the log's state), or a joint action the
desks saw completed that the log does not have completed. A sampled answered
session without a complete, decodable recording of both parties (every frame
decoded with PyAV) is unrecorded; an interrupted segment the log names is a gap, and so
is a segment the log names interrupted (`recording_interrupted`) that its recorder never
wrote. A party whose media all fell in such a gap (its recorder killed before it wrote any, its
next segment closed empty within `REESTABLISH_S` as the call ended before the media
reached the new recorder) is counted apart (`in_gap`), not as unrecorded.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from server.storage.schema import joint_actions, recordings, session_events, sessions
from signaling import events as ev

Row = dict[str, Any]
REESTABLISH_S = 5.0  # a party's media to the recorder that took over from a killed one:
# its offer, ICE through the TURN relay, the first frames, on a loaded 2-core machine
FINAL = {ev.STATE_ENDED, ev.STATE_ABANDONED, ev.STATE_REJECTED, ev.STATE_INTERRUPTED}
UNASKED = ("rejected", "no_show")  # visits without a call: refused, or never came


@dataclass
class LogView:
    sessions: dict[str, Row]  # by call id
    answers: Counter[str]  # `answered` events per session id
    actions: dict[str, str]  # action id -> state
    recordings: dict[str, list[Row]]  # session id -> segments
    # session id -> the segments its log started, and those it names interrupted
    # (`recording_interrupted` after that recorder's `recording_started`)
    started: dict[str, int] = field(default_factory=dict)
    named: dict[str, set[int]] = field(default_factory=dict)
    # sessions that ended within `REESTABLISH_S` of their last `recording_started` after a
    # hand-over: the new recorder was told too late for any media to reach it
    told_late: set[str] = field(default_factory=set)


async def read_log(db_url: str) -> LogView:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(sa.select(sessions))]
            answers = Counter({str(r.session_id): int(r.n) for r in await conn.execute(
                sa.select(session_events.c.session_id, sa.func.count().label("n"))
                .where(session_events.c.type == ev.ANSWERED)
                .group_by(session_events.c.session_id))})
            actions = {str(r.id): str(r.state) for r in await conn.execute(
                sa.select(joint_actions.c.id, joint_actions.c.state))}
            segments: dict[str, list[Row]] = defaultdict(list)
            for r in await conn.execute(sa.select(recordings)):
                segments[str(r.session_id)].append(dict(r._mapping))
            events = (await conn.execute(
                sa.select(session_events.c.session_id, session_events.c.type,
                          session_events.c.data, session_events.c.ts)
                .where(session_events.c.type.in_((ev.RECORDING_STARTED,
                                                  ev.RECORDING_INTERRUPTED)))
                .order_by(session_events.c.id))).all()
    finally:
        await engine.dispose()
    started, named = _named_gaps(events)
    return LogView({str(r["call_id"]): r for r in rows}, answers, actions, segments,
                   started, named, _told_late(events, rows))


def _told_late(events: list[Any], rows: list[Row]) -> set[str]:
    """Sessions whose last recorder, after a hand-over (segment > 1), was told within
    `REESTABLISH_S` of the call's end."""
    told: dict[str, Any] = {}
    for r in events:
        if r.type == ev.RECORDING_STARTED and int(r.data["segment"]) > 1:
            told[str(r.session_id)] = r.ts
    return {str(row["id"]) for row in rows
            if str(row["id"]) in told and row["ended_at"] is not None
            and (row["ended_at"] - told[str(row["id"])]).total_seconds() < REESTABLISH_S}


def _named_gaps(events: Any) -> tuple[dict[str, int], dict[str, set[int]]]:
    """Per session, the last segment its log started, and the segments it names
    interrupted: a `recording_interrupted` names its `segment`, else (a gap of a call
    that is over) its recorder's last `recording_started`."""
    started: dict[str, int] = {}
    named: dict[str, set[int]] = defaultdict(set)
    current: dict[tuple[str, str], int] = {}  # (session, recorder) -> its segment
    for r in events:
        session, recorder = str(r.session_id), (r.data or {}).get("recorder")
        if r.type == ev.RECORDING_STARTED:
            current[(session, recorder)] = int(r.data["segment"])
            started[session] = max(started.get(session, 0), int(r.data["segment"]))
        elif (r.data or {}).get("segment") is not None:
            named[session].add(int(r.data["segment"]))
        elif (session, recorder) in current:
            named[session].add(current[(session, recorder)])
    return started, dict(named)


@dataclass
class LedgerView:
    visits: list[Row] = field(default_factory=list)
    answers: list[Row] = field(default_factory=list)
    actions: list[Row] = field(default_factory=list)
    latencies: list[Row] = field(default_factory=list)
    desks: list[Row] = field(default_factory=list)
    lines: list[Row] = field(default_factory=list)
    lags: list[Row] = field(default_factory=list)  # load processes' loop lag samples
    media: list[Row] = field(default_factory=list)  # desks' links to recorders, per call
    no_free_kiosk: int = 0
    no_kiosk_codes: list[str] = field(default_factory=list)  # booked visitors among them


def read_ledgers(paths: list[Path]) -> LedgerView:
    out = LedgerView()
    kinds = {"visit": out.visits, "answer": out.answers, "action": out.actions,
             "latency": out.latencies, "desk": out.desks, "line": out.lines,
             "lag": out.lags, "media": out.media}
    for path in paths:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["kind"] == "no_free_kiosk":
                out.no_free_kiosk += 1
                if row.get("appointment"):
                    out.no_kiosk_codes.append(row["appointment"])
            else:
                kinds[row["kind"]].append(row)
    return out


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)
    sampled: int = 0
    recorded: int = 0
    untalked: int = 0  # answered as the kiosk cancelled or the day closed: hung up at once
    gaps: int = 0
    in_gap: list[str] = field(default_factory=list)  # sessions recorded only in named gaps
    frames: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> bool:
        return bool(self.lost or self.doubled or self.mismatches or self.unrecorded)


def check_calls(ledger: LedgerView, log: LogView) -> Findings:
    found = Findings()
    first_answers: dict[str, set[str]] = defaultdict(set)
    connected_to: dict[str, set[str]] = defaultdict(set)  # resumed ones too
    for a in ledger.answers:
        connected_to[a["call_id"]].add(a["specialist"])
        if not a["resumed"]:
            first_answers[a["call_id"]].add(a["specialist"])
    seen = _check_visits(ledger, log, connected_to, found)
    for call_id, specialists in first_answers.items():
        if len(specialists) > 1:
            found.doubled.append(f"{call_id}: connected to {sorted(specialists)}")
    _check_log_rows(ledger, log, seen, found)
    done = {a["action_id"] for a in ledger.actions if a["state"] == "completed"}
    for action_id in sorted(done):
        if log.actions.get(action_id) != "completed":
            found.mismatches.append(f"action {action_id}: desks saw completed, log has "
                                    f"{log.actions.get(action_id)}")
    return found


def _check_log_rows(ledger: LedgerView, log: LogView, seen: set[str], found: Findings
                    ) -> None:
    """Each session of the log against the calls the kiosks knew (or were refused)."""
    unknown = Counter(v["terminal"] for v in ledger.visits if v.get("call_id") is None
                      and v.get("outcome") not in UNASKED)  # asked, no call id seen yet
    refused = Counter(v["terminal"] for v in ledger.visits if v.get("outcome") == "rejected")
    # A booked visitor's request refused with `internal` (a backend failed after the request
    # was logged: the log has it rejected) walked in with a second request: two requests
    # of one visit. Other refusals of the code are made before anything is logged.
    refused.update(v["terminal"] for v in ledger.visits
                   if v.get("appointment_refused") == "internal")
    # A request sent again (its socket lost before any reply) may have left a session of
    # each earlier send, which must be closed: refused by the router as the terminal's
    # second call, or interrupted with the node killed while logging it.
    resent: Counter[str] = Counter()
    for v in ledger.visits:
        resent[v["terminal"]] += v.get("resent", 0)
    for call_id, row in log.sessions.items():
        if call_id not in seen and row["state"] == ev.STATE_REJECTED and \
                refused[row["terminal_id"]] > 0:
            refused[row["terminal_id"]] -= 1  # `call.rejected` names no call: by terminal
        elif call_id not in seen and unknown[row["terminal_id"]] > 0:
            unknown[row["terminal_id"]] -= 1  # that request: the closing time cut it short
            if row["state"] not in FINAL:
                found.lost.append(f"{call_id}: log state {row['state']} (reply never seen)")
        elif call_id not in seen and resent[row["terminal_id"]] > 0 and \
                row["state"] in FINAL and row["answered_at"] is None:
            resent[row["terminal_id"]] -= 1
        elif call_id not in seen:
            found.mismatches.append(f"{call_id}: in the log ({row['state']}), not in the ledger")
        elif log.answers[row["id"]] > 1 and not _requeued(row):
            found.doubled.append(f"{call_id}: answered {log.answers[row['id']]} times")


def _check_visits(ledger: LedgerView, log: LogView, connected_to: dict[str, set[str]],
                  found: Findings) -> set[str]:
    """Each visit against its session; the call ids the kiosks knew."""
    seen: set[str] = set()
    for v in ledger.visits:
        call_id = v.get("call_id")
        if call_id is None:
            if v.get("outcome") not in UNASKED and not v.get("cut"):
                found.lost.append(f"{v['terminal']} {v['queue']}: request never answered "
                                  f"({v.get('outcome', 'unfinished')})")
            continue
        seen.add(call_id)
        row = log.sessions.get(call_id)
        if row is None or row["state"] not in FINAL:
            found.lost.append(f"{call_id}: log state {row and row['state']}, kiosk saw "
                              f"{v.get('outcome', 'unfinished')}"
                              + (f" (the load failed: {v['error']})" if v.get("error") else ""))
            continue
        if not v.get("cut"):
            _compare(v, row, connected_to.get(call_id, set()), found)
    return seen


def _requeued(row: Row) -> bool:
    """A call whose specialist was lost goes back to its queue and is answered again."""
    return row.get("end_reason") not in (None, "hangup") or row["state"] == ev.STATE_INTERRUPTED


def _compare(v: Row, row: Row, answered_by: set[str], found: Findings) -> None:
    call_id, outcome = v["call_id"], v.get("outcome")
    log_answered = row["answered_at"] is not None
    kiosk_answered = "answered" in v
    if kiosk_answered != log_answered:
        found.mismatches.append(f"{call_id}: kiosk answered={kiosk_answered}, log "
                                f"answered={log_answered} ({row['state']})")
    elif log_answered and row["specialist_id"] not in answered_by | {
            p.removeprefix("specialist:") for p in v.get("specialists", [])}:
        found.mismatches.append(f"{call_id}: log says {row['specialist_id']}, desks saw "
                                f"{sorted(answered_by)}")
    if outcome == "cancelled" and row["state"] != ev.STATE_ABANDONED:
        found.mismatches.append(f"{call_id}: kiosk cancelled, log {row['state']}")


def check_recordings(ledger: LedgerView, log: LogView, root: Path, found: Findings) -> None:
    """Every sampled answered session: a closed, hashed, decodable segment of each party."""
    for v in ledger.visits:
        if not (v.get("media") and "answered" in v):
            continue
        found.sampled += 1
        if "cancelled" in v or v.get("cut"):  # the answer crossed the kiosk's cancel, or
            found.untalked += 1  # closing time: nobody talked, nothing to record
            continue
        row = log.sessions.get(v["call_id"])
        segments = log.recordings.get(str(row["id"])) if row else None
        recorded: set[str] = set()
        problem = _recording_problem(segments or [], root, found, recorded)
        session = str(row["id"]) if row else ""
        if problem and "does not decode" not in problem and _only_in_gaps(
                segments or [], recorded, log.named.get(session, set()),
                log.started.get(session, 0), session in log.told_late):
            found.in_gap.append(f"{v['call_id']}: {problem}")
        elif problem:
            found.unrecorded.append(f"{v['call_id']}: {problem}")
        else:
            found.recorded += 1


def _recording_problem(segments: list[Row], root: Path, found: Findings,
                       parties: set[str]) -> str | None:
    """What is wrong with a session's recording, if anything; `parties` gets the
    participants with a segment of video and audio."""
    held: dict[str, str] = {}  # segment row id -> what it holds, for the report
    for seg in segments:
        if seg["state"] == "interrupted":
            found.gaps += 1
        if seg["state"] not in ("complete", "interrupted") or not seg["sha256"]:
            # closed without a file (nothing was written, or unreadable), or never closed
            held[seg["id"]] = "empty" if seg["state"] in ("complete", "interrupted") else "-"
            continue
        try:
            frames = decode(root / seg["path"])
        except (av.FFmpegError, OSError) as exc:
            return f"{seg['path']} does not decode: {exc}"
        found.frames.update(frames)
        held[seg["id"]] = f"v{frames['video']}/a{frames['audio']}"
        if frames["video"] and frames["audio"]:
            parties.add(seg["participant_id"])
    if len(parties) < 2:
        states = sorted(f"{s['participant_id'][:8]}:{s['segment']}:{s['state']}@{s['recorder']}"
                        f" {held[s['id']]}" for s in segments)
        return f"{len(parties)} of 2 parties recorded (segments {states})"
    return None


def _only_in_gaps(segments: list[Row], recorded: set[str], named: set[int], started: int,
                  told_late: bool = False) -> bool:
    """Each party with no media recorded lost it to a gap the log names: an interrupted
    segment, or a segment the log names interrupted that its recorder never wrote for the
    party (its recorder lost before any of its media came), and after it only segments
    closed empty within `REESTABLISH_S`. A party with no segment at all: only if the log
    names the session's last segment interrupted (no later recorder missed the party), or
    the call ended within `REESTABLISH_S` of the last recorder being told (`told_late`:
    no media could reach it; the goal-size day's `c_774b4734bb986282`, rec1 killed 0.2 s
    after it was given the call, rec2 told 4.7 s later, the call over 1.5 s after that)."""
    by_party: dict[str, list[Row]] = defaultdict(list)
    for seg in sorted(segments, key=lambda s: s["segment"]):
        by_party[seg["participant_id"]].append(seg)
    if len(by_party) < 2 and (not named or (max(named) != started and not told_late)):
        return False
    for party, segs in by_party.items():
        if party in recorded:
            continue
        written = {s["segment"] for s in segs}
        cuts = [s["segment"] for s in segs if s["state"] == "interrupted"]
        cuts += [n for n in named if n not in written]
        if not cuts or any(not _closed_soon(s) for s in segs if s["segment"] > max(cuts)):
            return False
    return True


def _closed_soon(seg: Row) -> bool:
    """A segment after a named gap that lived less than `REESTABLISH_S`: the link made
    anew had no time to carry media, whether it closed empty or with a frame or two (the
    CI day's `c_502e3d806e288e7d` at load 12: the kiosk's segment on the next recorder
    lived 0.3 s, one video frame, before the call ended)."""
    started, ended = seg["created_at"], seg["ended_at"]
    return (started is not None and ended is not None
            and (ended - started).total_seconds() < REESTABLISH_S)


def decode(path: Path) -> Counter[str]:
    """Decode every frame of a WebM (any decoder error raises)."""
    frames: Counter[str] = Counter()
    with av.open(str(path)) as container:
        for stream in container.streams:
            stream.codec_context.options = {"err_detect": "explode"}
        for frame in container.decode(*container.streams):
            frames["video" if isinstance(frame, av.VideoFrame) else "audio"] += 1
    return frames
