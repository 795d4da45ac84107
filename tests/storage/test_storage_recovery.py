"""Crash recovery: sessions a dead server left open are closed as `interrupted`, with an event."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import textwrap
from pathlib import Path

from server.storage import Database
from signaling import events as ev
from signaling.backend import Ending
from signaling.events import LogEvent

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parents[2]

# A server process that logs calls, then dies without closing anything.
CRASHING_SERVER = textwrap.dedent(
    """
    import asyncio, datetime as dt, os, sys
    from server.storage import Database
    from signaling.events import LogEvent

    T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)

    def e(kind, sid, s, **data):
        ts = T0 + dt.timedelta(seconds=s)
        return LogEvent(type=kind, ts=ts, session_id=sid, call_id="c-" + sid, data=data)

    async def main():
        db = await Database.connect(sys.argv[1])
        await db.upgrade()
        await db.append([e("queued", "talking", 0, queue="tax", node_id="n1")])
        await db.append([e("answered", "talking", 30, agent_id="alice")])
        await db.append([e("queued", "waiting", 60, queue="tax", node_id="n2")])
        await db.append([e("queued", "done", 70, queue="tax", node_id="n1")])
        await db.append([e("abandoned", "done", 80, reason="cancelled")])
        print("logged", flush=True)
        os._exit(9)

    asyncio.run(main())
    """
)


async def test_killed_server_leaves_sessions_that_the_next_start_closes(database_url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_SERVER, database_url,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert (proc.returncode, out) == (9, b"logged\n"), err.decode()

    restart = T0 + dt.timedelta(seconds=300)
    db = await Database.connect(database_url)
    try:
        await db.upgrade()
        assert await db.close_interrupted(restart) == 2
        assert await db.close_interrupted(restart) == 0
        talking = await db.get_session("talking")
        waiting = await db.get_session("waiting")
        done = await db.get_session("done")
        assert talking is not None and waiting is not None and done is not None
        assert (talking.state, talking.ended_at, talking.talk_s) == ("interrupted", restart, 270)
        assert talking.end_reason == "interrupted" and talking.events[-1].type == ev.INTERRUPTED
        assert (waiting.state, waiting.talk_s, waiting.events[-1].ts) == (
            "interrupted", None, restart,
        )  # fmt: skip
        assert (done.state, [e.type for e in done.events]) == (
            "abandoned", ["queued", "abandoned"],
        )  # fmt: skip
    finally:
        await db.close()


async def test_only_the_dead_nodes_sessions_are_closed(database: Database) -> None:
    def queued(sid: str, node: str) -> LogEvent:
        return LogEvent(type=ev.QUEUED, ts=T0, session_id=sid, call_id=f"c-{sid}",
                        data={"queue": "tax", "node_id": node})  # fmt: skip

    await database.append([queued("a", "n1"), queued("b", "n2"), queued("c", "n2")])
    assert await database.close_interrupted(T0, node_ids=set()) == 0
    assert await database.close_interrupted(T0, node_ids={"n2", "n3"}) == 2
    states = {s.id: s.state for s in (await database.list_sessions())[0]}
    assert states == {"a": "queued", "b": "interrupted", "c": "interrupted"}


async def test_a_session_whose_end_routing_kept_is_closed_as_it_ended(
        database: Database) -> None:
    """The node that ended these calls in routing died before logging it: a restart closes
    each session as routing kept its end (the hang-up's `ended` with its members leaving,
    the cancel's `abandoned`), at the time it ended, not `interrupted` at the restart; a
    call routing kept no end of is `interrupted`; a live one stays open."""
    def e(kind: str, sid: str, s: int, **data: object) -> LogEvent:
        return LogEvent(type=kind, ts=T0 + dt.timedelta(seconds=s), session_id=sid,
                        call_id="c-" + sid, actor=None, data=dict(data))

    await database.append([e("queued", "talked", 0, queue="tax", node_id="n1")])
    await database.append([
        e("answered", "talked", 30, agent_id="alice"),
        e("participant_joined", "talked", 30, participant_id="specialist:alice",
          role="specialist", principal_id="alice"),
        e("participant_joined", "talked", 30, participant_id="terminal:T1", role="terminal",
          principal_id="T1")])
    for sid in ("waited", "unknown", "live"):
        await database.append([e("queued", sid, 0, queue="tax", node_id="n1")])
    at = (T0 + dt.timedelta(seconds=90)).timestamp()
    kept = {"c-talked": Ending(at=at, reason="hangup", by="specialist:alice", answered=True,
                               members=("specialist:alice", "terminal:T1")),
            "c-waited": Ending(at=at, reason="cancelled")}

    async def alive(call_id: str) -> bool:
        return call_id == "c-live"

    async def endings(call_id: str) -> Ending | None:
        return kept.get(call_id)

    restart = T0 + dt.timedelta(seconds=300)
    assert await database.close_interrupted(restart, node_ids={"n1"}, alive=alive,
                                            endings=endings) == 3
    talked, waited, unknown, live = [await database.get_session(sid) for sid in (
        "talked", "waited", "unknown", "live")]
    assert talked is not None and waited is not None and unknown is not None
    assert live is not None and live.state == "queued"
    assert (talked.state, talked.end_reason, talked.talk_s) == ("ended", "hangup", 60)
    assert talked.ended_at == T0 + dt.timedelta(seconds=90)
    assert {(p.participant_id, p.left_reason) for p in talked.participants} == {
        ("specialist:alice", "hangup"), ("terminal:T1", "hangup")}
    assert (waited.state, waited.end_reason, waited.answered_at) == (
        "abandoned", "cancelled", None)
    assert (unknown.state, unknown.ended_at) == ("interrupted", restart)


async def test_open_calls_names_the_calls_whose_session_is_open(database: Database) -> None:
    """The survivor's one read of a dead node's recent ends: which sessions are still
    open, over lists longer than one statement's (`inlists.LENGTHS`)."""
    def queued(sid: str) -> LogEvent:
        return LogEvent(type=ev.QUEUED, ts=T0, session_id=sid, call_id=f"c-{sid}",
                        data={"queue": "tax", "node_id": "n1"})

    await database.append([queued("open"), queued("closed")])
    await database.append([LogEvent(type=ev.ABANDONED, ts=T0, session_id="closed",
                                    call_id="c-closed", data={"reason": "cancelled"})])
    unknown = [f"c-unknown-{n}" for n in range(700)]
    assert await database.open_calls([*unknown, "c-closed", "c-open"]) == {"c-open"}
    assert await database.open_calls([]) == set()
