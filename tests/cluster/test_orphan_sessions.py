"""A node killed between logging a caller's request and queueing its call: the session
would stay `queued` in the log for ever (the routing state never had the call, so nothing
ends it). The node settles such sessions of its own when it starts again."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from signaling import events as ev
from signaling.backend import Ending
from tests.cluster.procs import Cluster
from tests.cluster.test_failover import session_state
from tests.helpers import eventually


async def test_a_session_whose_call_never_reached_routing_ends_when_its_node_restarts(
        cluster: Cluster) -> None:
    a, b = await cluster.start("a", "b")
    await cluster.connect(b, await cluster.specialist("li", {"tax": 1}))  # signed in, away
    terminal = await cluster.connect(a, await cluster.terminal("T1"))
    await terminal.send({"type": "call.request", "queue": "tax"})
    live = await terminal.recv("call.queued")  # a call of node a that routing knows
    db = await cluster.provision()
    now = dt.datetime.now(dt.UTC)
    await db.append([ev.log_event(  # what node a logged just before it was killed
        ev.Queued(queue="tax", terminal_id="T2", node_id="a"), now,
        session_id=str(uuid.uuid4()), call_id="c_never_queued")])
    cluster.kill(a)
    await cluster.start("a")
    assert await session_state(cluster, "c_never_queued", "interrupted") == "interrupted"
    assert await session_state(cluster, live["call_id"], "queued") == "queued"


async def test_a_cancel_its_node_never_logged_is_closed_abandoned_when_it_restarts(
        cluster: Cluster, redis: Redis) -> None:
    """The short bench day's kiosk that cancelled 0.14 s before its node was killed: the
    cancel's routing transaction ran, its `abandoned` was never logged. The restarted node
    closes the session as routing kept the end (`abandoned`, `cancelled`), as the kiosk saw
    it, not `interrupted`."""
    a, b = await cluster.start("a", "b")
    await cluster.connect(b, await cluster.specialist("li", {"tax": 1}))  # signed in, away
    terminal = await cluster.connect(a, await cluster.terminal("T1"))
    await terminal.send({"type": "call.request", "queue": "tax"})
    call_id = (await terminal.recv("call.queued"))["call_id"]
    now = time.time()  # node a's cancel, in routing only: a is killed before its append
    router = RedisRouter(redis, cluster.prefix, [])
    assert await router.remove(call_id, now, Ending(at=now, reason="cancelled")) is not None
    cluster.kill(a)
    await cluster.start("a")
    assert await session_state(cluster, call_id, "abandoned") == "abandoned"
    db = await cluster.provision()
    (row,), _ = await db.list_sessions(terminal="T1")
    assert (row.end_reason, row.answered_at) == ("cancelled", None)


async def test_a_hangup_its_killed_node_never_logged_is_closed_by_the_survivor(
        cluster: Cluster, redis: Redis) -> None:
    """The goal-size day's hand-off call: the phone's hang-up ended the call in routing
    on node a, which was killed before its `ended` was logged or its `call.ended` reached
    the specialist on node b (connected in the log for ever, the specialist never told).
    The survivor that takes node a over closes the session as the hang-up ended it and
    tells the specialist."""
    a, b = await cluster.start("a", "b")
    specialist = await cluster.ready(b, await cluster.specialist("li", {"tax": 1}))
    terminal = await cluster.connect(a, await cluster.terminal("T1"))
    await terminal.send({"type": "call.request", "queue": "tax"})
    call_id = (await terminal.recv("call.queued"))["call_id"]
    await specialist.recv("call.offered", call_id=call_id)
    await specialist.send({"type": "call.accept", "call_id": call_id})
    connected = await specialist.recv("call.connected", call_id=call_id)
    (heartbeat,) = [key async for key in redis.scan_iter(f"{cluster.prefix}:hb:a.*")]
    instance = heartbeat.rsplit(":", 1)[1]
    now = time.time()  # node a's hang-up, in routing only: a is killed before its append
    router = RedisRouter(redis, cluster.prefix, [], instance=instance)
    assert await router.hangup(call_id, now, Ending(
        at=now, reason="hangup", by="terminal:T1", answered=True,
        members=("specialist:li", "terminal:T1"))) is not None
    cluster.kill(a)
    ended = await specialist.recv("call.ended", call_id=call_id, timeout=60)
    assert (ended["reason"], ended["by"], ended["session_id"]) == (
        "hangup", "terminal:T1", connected["session_id"])
    assert await session_state(cluster, call_id, "ended") == "ended"
    db = await cluster.provision()
    session = await db.get_session(connected["session_id"])
    assert session is not None and session.end_reason == "hangup"
    assert session.events[-1].type == "participant_left"


async def test_a_hand_over_its_killed_node_never_logged_is_logged_by_the_survivor(
        cluster: Cluster, redis: Redis) -> None:
    """The goal-size day's `c_11ba988aa2607045`: the kiosk's waiting call went over to a
    phone on node a, which was killed before its `handed_off` was logged. The survivor
    that takes node a over logs it, at the hand-over's time, with the phone a participant."""
    a, b = await cluster.start("a", "b")
    await cluster.connect(b, await cluster.specialist("li", {"tax": 1}))  # away: staffed
    terminal = await cluster.connect(a, await cluster.terminal("T1"))
    await terminal.send({"type": "call.request", "queue": "tax"})
    queued = await terminal.recv("call.queued")
    (heartbeat,) = [key async for key in redis.scan_iter(f"{cluster.prefix}:hb:a.*")]
    instance = heartbeat.rsplit(":", 1)[1]
    now = time.time()  # node a's hand-over, in routing only: a is killed before its append
    router = RedisRouter(redis, cluster.prefix, [], instance=instance)
    await router.hand_off(queued["call_id"], "T1", "v_lost", now)
    cluster.kill(a)
    db = await cluster.provision()

    async def events() -> list[ev.LogEvent]:
        (row,), _ = await db.list_sessions(terminal="T1")
        session = await db.get_session(row.id)
        assert session is not None
        return [e for e in session.events if e.type == ev.HANDED_OFF]

    async def handed_off() -> bool:
        return bool(await events())

    await eventually(handed_off)
    (event,) = await events()
    assert (event.data["participant_id"], event.data["terminal_id"]) == ("visitor:v_lost",
                                                                         "T1")
    assert abs(event.ts.timestamp() - now) < 0.01
    (row,), _ = await db.list_sessions(terminal="T1")
    session = await db.get_session(row.id)
    assert session is not None
    assert "visitor:v_lost" in {p.participant_id for p in session.participants}


async def test_an_answer_its_killed_node_logged_but_never_told_is_told_by_the_survivor(
        cluster: Cluster, redis: Redis) -> None:
    """The goal-size day's `c_28f724f58ed0662e`: node a answered the call and logged it,
    and was killed before its sends; the kiosk, on node b all along, never heard
    `call.connected` and gave up 166 s later. The survivor replays the answer for its
    numbers and tells the kiosk."""
    a, b = await cluster.start("a", "b")
    specialist = await cluster.ready(a, await cluster.specialist("li", {"tax": 1}))
    terminal = await cluster.connect(b, await cluster.terminal("T1"))
    await terminal.send({"type": "call.request", "queue": "tax"})
    call_id = (await terminal.recv("call.queued"))["call_id"]
    offered = await specialist.recv("call.offered", call_id=call_id)
    (heartbeat,) = [key async for key in redis.scan_iter(f"{cluster.prefix}:hb:a.*")]
    router = RedisRouter(redis, cluster.prefix, [], instance=heartbeat.rsplit(":", 1)[1])
    call = await router.accept(call_id, "li", time.time(), offered["offer"])  # node a's
    db = await cluster.provision()
    at = dt.datetime.now(dt.UTC)
    await db.append([ev.log_event(payload, at, session_id=call.session_id, call_id=call_id,
                                  actor=actor) for payload, actor in (  # and its append
        (ev.Answered(agent_id="li", agent_name="Li", offer=offered["offer"], wait_s=0.0),
         "specialist:li"),
        (ev.ParticipantJoined(participant_id="terminal:T1", role="terminal",
                              principal_id="T1"), "terminal:T1"),
        (ev.ParticipantJoined(participant_id="specialist:li", role="specialist",
                              principal_id="li", name="Li"), "specialist:li"))])
    cluster.kill(a)  # before its sends

    connected = await terminal.recv("call.connected", call_id=call_id, timeout=60)
    assert connected["session_id"] == call.session_id
    assert [p["id"] for p in connected["participants"] if p["role"] == "specialist"] == [
        "specialist:li"]
    session = await db.get_session(call.session_id)
    assert session is not None and [e.type for e in session.events].count("answered") == 1
