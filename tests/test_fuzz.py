"""Hostile and malformed frames from both parties of a call: always `error`, never a change.

Hypothesis drives a synchronous property from a worker thread; each example runs on
the test's event loop (`run_coroutine_threadsafe`), against the real app.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling import messages as m
from tests.helpers import InCall, Peer, connected_call, log_size, routing_state

App = Callable[..., web.Application]
T = TypeVar("T")
EXAMPLES = 120
HUGE = "界" * 25_000  # 75 KB of UTF-8: over the 64 KiB frame limit, under the socket's 256 KiB
TAGS = sorted(t.__struct_config__.tag for t in m.Inbound.__args__)
QUIET = {"queue.status", "call.position"}  # broadcasts a peer may get at any time

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                  max_size=4),
    max_leaves=12,
)
wrong_values = st.sampled_from([None, 0, -1, 1.5, True, [], {}, "", "x", HUGE,
                                {"type": "offer"}, [1, 2]]) | json_values


def templates(own: InCall, other: InCall, to: str) -> dict[str, dict[str, Any]]:
    """A well-formed frame of every type that addresses what is not the sender's own."""
    candidate = {"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host", "sdpMid": "0"}
    return {
        "hello": {"token": "vwt_" + "a" * 40},
        "call.request": {"queue": "tax"},
        "call.cancel": {"call_id": other.call_id},
        "agent.status": {"status": "available"},
        "call.accept": {"call_id": other.call_id},
        "call.decline": {"call_id": other.call_id},
        "call.hangup": {"call_id": other.call_id},
        "rtc.description": {"call_id": own.call_id, "to": to,
                            "description": {"type": "offer", "sdp": "v=0"}},
        "rtc.candidate": {"call_id": other.call_id, "to": own.kiosk_id, "candidate": candidate},
        "chat.send": {"call_id": other.call_id, "text": "hello"},
        "session.rate": {"session_id": other.session_id, "score": 5},
        "session.wrapup": {"session_id": other.session_id, "outcome": "resolved"},
    }


@st.composite
def hostile_frames(draw: st.DrawFn, own: InCall, other: InCall) -> tuple[str, str]:
    """(sender, frame text): random JSON, or a frame of every type with a field gone wrong."""
    sender = draw(st.sampled_from(["kiosk", "agent"]))
    kind = draw(st.sampled_from(["json", "template", "template", "template", "mutated",
                                 "missing", "huge", "deep"]))
    if kind == "json":
        value = draw(json_values.filter(lambda v: not (isinstance(v, dict) and v.get("type")
                                                       in TAGS)))
        return sender, json.dumps(value)
    to = draw(st.text(min_size=1, max_size=40).filter(lambda t: t not in (own.kiosk_id,
                                                                          own.agent_id)))
    tag, body = draw(st.sampled_from(sorted(templates(own, other, to).items())))
    frame: dict[str, Any] = {"type": tag, **body}
    fields = sorted(body)
    if kind == "mutated":
        frame[draw(st.sampled_from(fields))] = draw(wrong_values)
    elif kind == "missing":
        del frame[draw(st.sampled_from(fields))]
    elif kind == "huge":
        frame[draw(st.sampled_from([*fields, "padding"]))] = HUGE
    elif kind == "deep":  # pathological nesting, under the frame limit: still just `error`
        depth = draw(st.integers(min_value=500, max_value=15_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        frame[draw(st.sampled_from([*fields, "padding"]))] = "@DEEP@"
        return sender, json.dumps(frame).replace('"@DEEP@"', opener * depth + "1" +
                                                 closer * depth)
    return sender, json.dumps(frame)


async def test_hostile_frames_change_nothing(aiohttp_client: Any, make_app: App) -> None:
    client = await aiohttp_client(make_app(server={"rate_per_s": 100_000,
                                                   "rate_burst": 100_000}))
    app = client.server.app
    own = await connected_call(client, "T1", "alice")
    other = await connected_call(client, "T2", "bob")
    peers: dict[str, Peer] = {"kiosk": own.kiosk, "agent": own.agent}
    ids = {"agents": ["alice", "bob"], "calls": [own.call_id, other.call_id]}
    for peer in (own.kiosk, own.agent, other.kiosk, other.agent):
        peer.inbox.clear()  # what set-up left; everything after must be an answer to a frame
    before = await routing_state(app, **ids)
    events = await log_size(app)
    loop = asyncio.get_running_loop()
    answered: list[str] = []

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    async def one(sender: str, frame: str) -> None:
        peer = peers[sender]
        await peer.ws.send_str(frame)
        error = await peer.recv("error")
        assert error["message"], error
        answered.append(error["code"])
        assert await routing_state(app, **ids) == before, frame[:300]
        assert await log_size(app) == events, frame[:300]

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(hostile_frames(own, other))
    def property_(sent: tuple[str, str]) -> None:
        run(one(*sent))

    await asyncio.to_thread(property_)
    assert len(answered) >= EXAMPLES
    for peer in (own.kiosk, own.agent, other.kiosk, other.agent):
        await peer.send({"type": "ping"})
        await peer.recv("pong")
        assert [msg for msg in peer.inbox if msg["type"] not in QUIET] == []
    await own.agent.send({"type": "chat.send", "call_id": own.call_id, "text": "still here"})
    assert (await own.kiosk.recv("chat.message"))["text"] == "still here"
