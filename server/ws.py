"""`GET /ws`: the signalling WebSocket. Moves frames between the socket and the switchboard.

Every frame is decoded into a typed message here (the edge); refusals become
`error {code, message}` and the connection stays usable.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode, WSMsgType, web

from server import keys
from server.cluster.keys import DRAIN_CLOSE_CODE
from server.conncaps import CAPS, Slot
from server.connection import Connection
from server.http.auth import origin_allowed
from server.logs import SUBJECT
from server.metrics import METRICS
from server.recording.embedded import RECORDER_TOKEN_PREFIX, RECORDING
from server.steptrace import begin, end
from server.turn import TURN, start_refresh, stop_refresh
from signaling import messages as m
from signaling.errors import FENCED, Refused
from signaling.handoff import TICKET_PREFIX
from signaling.identity import Identity, Role
from signaling.switchboard import RELAYS

log = logging.getLogger(__name__)

UNAUTHORIZED = 4401  # close code: hello missing, late or with a bad token
FORBIDDEN = 4403  # close code: the account may not use signalling (e.g. a manager)
IDLE = 4408  # close code: silent for longer than idle_timeout_s
REVOKED = 4410  # close code: the terminal was revoked
POLICY = int(WSCloseCode.POLICY_VIOLATION)  # 1008: message-rate abuse
SOCKET_LIMIT = 256 * 1024  # larger frames close the socket; 64 KiB..256 KiB get an error
# permessage-deflate is not offered, though browsers ask for it: it cost 2.6 times the CPU
# of a relayed ICE candidate and ~220 KiB per socket (a zlib context each way), for frames
# of a few hundred bytes; and one context holding TURN credentials and resume tokens beside
# text another party wrote is the setting of compression side channels (CRIME, BREACH).
# docs/benchmarks.md, "Compression".
COMPRESS = False
_TEXT = WSMsgType.TEXT
BESIDE = frozenset({m.RecordSegment, m.RecordManifest})
"""A recorder's reports, carried out beside its socket's read loop, in order per call: each
is a catalog write (tried again while a backend fails), and one recorder's socket carries
the answers and candidates of every party of every call it records. In the loop, the answer
to a party's offer waited behind every report read before it: on the CI-size faulted day at
load 10 a kiosk's answer went out 3.4 s after the recorder sent it, after its call had
ended, and the kiosk's segment held nothing. A relay does not need its segment's row."""
_ENDED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


class RateLimit:
    """Token bucket per connection: `rate` messages/s with bursts of `burst`."""

    __slots__ = ("burst", "dropped", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.dropped = 0

    def allow(self, now: float) -> bool:
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.burst:  # (not `min()`: a builtin call less on every frame)
            tokens = self.burst
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        self.dropped += 1
        return False


async def websocket(request: web.Request) -> web.WebSocketResponse:
    if not origin_allowed(request):
        raise web.HTTPForbidden(text="origin not allowed")
    slot = request.app[CAPS].admit(request.remote or "?")
    if slot is None:  # refused before the upgrade: no socket, no task, no buffer
        raise web.HTTPTooManyRequests(text="too many connections from this address",
                                      headers={"Retry-After": "10"})
    try:
        return await _connection(request, slot)
    finally:
        slot.release()


async def _connection(request: web.Request, slot: Slot) -> web.WebSocketResponse:
    settings = request.app[keys.SETTINGS].server
    ws = web.WebSocketResponse(max_msg_size=SOCKET_LIMIT, autoping=True, compress=COMPRESS)
    await ws.prepare(request)
    conn = Connection(ws, settings.send_queue, request.remote or "?")
    conn.start()
    sockets = request.app[keys.SOCKETS]
    sockets.add(ws)
    request.app[keys.CONNECTIONS].add(conn)
    board = request.app[keys.BOARD]
    who: Identity | None = None
    epoch = 0
    try:
        hello = await _receive_hello(ws, conn)
        if hello is not None:
            who = await _authenticate(request, conn, hello)
        if who is not None:
            slot.authenticated()
            try:
                epoch = await board.connect(
                    who, conn, hello.resume if hello else None,
                    hello.call_id if hello else None,
                    hello.token if hello and who.role == Role.VISITOR else None)
            except Refused as exc:  # this node was taken for dead: the client goes elsewhere
                if exc.code != FENCED:
                    raise
                log.info("%s not connected here: %s", who.principal, exc.message)
                who = None  # nothing attached: nothing to disconnect
                await ws.close(code=DRAIN_CLOSE_CODE, message=b"reconnect")
                return ws
            if who.role == "recorder" and hello is not None:
                await board.recorder_joined(who, hello.capacity)
            refresh = start_refresh(request.app[TURN],
                                    functools.partial(board.credentials_expiring, who))
            try:
                await _serve(request, ws, conn, who)
            finally:
                await stop_refresh(refresh)
    finally:
        sockets.discard(ws)
        try:
            if who is not None:
                await board.disconnect(who, epoch, conn)
        finally:
            # aiohttp cancels the handler when the client's TCP side closes, which lands in
            # the (shielded) disconnect above: the writer must stop all the same, or the
            # connection, its socket and its writer task wait for the cycle collector.
            await _drain(conn)
    return ws


def late_hello(conn: Connection) -> None:
    """Past `hello_timeout_s` without a hello (the idle sweeper's check: one sweep over the
    connections instead of a timer per socket, which a reconnect storm of 10,000 pays)."""
    _refuse(conn, "unauthorized", "no hello within the time allowed", UNAUTHORIZED)


async def _receive_hello(ws: web.WebSocketResponse, conn: Connection) -> m.Hello | None:
    frame = await ws.receive()  # the hello deadline is kept by the app's idle sweeper
    conn.awaiting_hello = False  # its answer may take a while (a storm's token look-ups)
    if conn.closing:  # refused meanwhile (late hello, shutdown): nothing more to say
        return None
    if frame.type != WSMsgType.TEXT:
        _refuse(conn, "unauthorized", "the first frame must be a hello text frame", UNAUTHORIZED)
        return None
    try:
        msg = m.decode(frame.data.encode())  # bytes: the size limit is in bytes, not characters
    except m.InvalidMessage as exc:
        _refuse(conn, "unauthorized", f"the first frame must be hello: {exc}", UNAUTHORIZED)
        return None
    if not isinstance(msg, m.Hello):
        _refuse(conn, "unauthorized", "the first frame must be hello", UNAUTHORIZED)
        return None
    return msg


async def _authenticate(request: web.Request, conn: Connection, hello: m.Hello
                        ) -> Identity | None:
    token = hello.token
    if token.startswith(RECORDER_TOKEN_PREFIX):
        return await _recorder(request, conn, token)
    if token.startswith(TICKET_PREFIX):
        return await _visitor(request, conn, hello)
    auth = request.app[keys.AUTH]
    terminal = await auth.terminal_for_token(token)
    if terminal is not None:
        site = m.SiteInfo(id=terminal.site.id, name=terminal.site.name, kind=terminal.site.kind)
        return Identity(role=Role.TERMINAL, id=terminal.id, name=terminal.name, site=site)
    user = await auth.user_for_hello(token)
    if user is None:
        _refuse(conn, "unauthorized", "unknown, expired or revoked token", UNAUTHORIZED)
        return None
    if user.must_change_password:
        _refuse(conn, "password_change_required", "change the password first", FORBIDDEN)
        return None
    if user.role != "specialist":
        _refuse(conn, "forbidden", f"a {user.role} account cannot use signalling", FORBIDDEN)
        return None
    return Identity(
        role=Role.SPECIALIST,
        id=user.username,
        name=user.name,
        skills=dict(user.skills),
        department=user.department,
    )


async def _recorder(request: web.Request, conn: Connection, token: str) -> Identity | None:
    """A `vwin recorder` process: only while this server records sessions."""
    services = request.app[RECORDING]
    who = await services.identity(request.app[keys.DB], token)
    if who is None:
        _refuse(conn, "unauthorized", "unknown or revoked recorder token", UNAUTHORIZED)
    elif services.setup is None:
        _refuse(conn, "forbidden", "recording is not enabled on this server", FORBIDDEN)
        return None
    return who


async def _visitor(request: web.Request, conn: Connection, hello: m.Hello) -> Identity | None:
    """A phone opening a hand-off ticket (`signaling.handoff`): the first time it takes
    the call over; later only with its resume token."""
    try:
        return await request.app[keys.BOARD].open_ticket(hello.token, hello.resume)
    except Refused as exc:
        _refuse(conn, exc.code, exc.message, UNAUTHORIZED)
        return None


def _refuse(conn: Connection, code: str, message: str, close_code: int) -> None:
    conn.send(m.encode(m.Error(code=code, message=message)))
    conn.close(close_code, code)


async def _serve(
    request: web.Request, ws: web.WebSocketResponse, conn: Connection, who: Identity
) -> None:
    """Every frame after hello: rate limit, decode (the edge's validation), the switchboard.
    One loop without a call per frame of its own: it runs for every relayed ICE candidate."""
    settings = request.app[keys.SETTINGS].server
    handle = request.app[keys.BOARD].handle
    handled = request.app[METRICS].handled
    done = request.app[METRICS].step_done
    limit = RateLimit(settings.rate_per_s, settings.rate_burst)
    read = _read_ahead(ws)
    reports = _Reports(conn, who, handle, handled)
    while True:  # a closed socket's receive() answers CLOSED (in _ENDED)
        if not read:  # all that the last TCP read brought is handled: its relays go out now
            conn.flush_corked()
        frame = await ws.receive()  # silence is caught by the app's idle sweeper (cheaper)
        conn.last_seen = now = time.monotonic()
        if frame.type is not _TEXT:  # (the common case first: this runs for every frame)
            if frame.type in _ENDED:
                return
            conn.send(m.encode(m.Error(code="invalid_message", message="send JSON text frames")))
            continue
        if not limit.allow(now):
            if limit.dropped > settings.rate_burst:
                _refuse(conn, "rate_limited", "too many messages; closing", POLICY)
                return
            conn.send(m.encode(m.Error(code="rate_limited", message="slow down")))
            continue
        try:  # bytes: the 64 KiB limit counts bytes, not characters
            msg = m.decode(frame.data.encode())
        except m.InvalidMessage as exc:
            conn.send(m.encode(m.Error(code="invalid_message", message=str(exc))))
            continue
        subject = SUBJECT.set(msg)  # lines logged while handling it name its call
        if type(msg) in BESIDE and isinstance(msg, m.RecordSegment | m.RecordManifest):
            reports.run(msg)  # (its task copies SUBJECT)
            SUBJECT.reset(subject)
            continue
        # SDP and ICE are forwarded, not handled by a step: untimed (0.7 µs a frame, ~10 %
        # of a relay; bench.relay measures them)
        traced = None if type(msg) in RELAYS else begin(now)
        try:
            await handle(who, msg)
        except Refused as exc:
            conn.send(m.encode(m.Error(code=exc.code, message=exc.message,
                                       refused=m.tag_of(msg),
                                       call_id=getattr(msg, "call_id", None),
                                       request_id=getattr(msg, "request_id", None))))
        except Exception:
            log.exception("handling %s from %s failed", type(msg).__name__, who.principal)
            conn.send(m.encode(m.Error(code="internal", message="the server could not do that")))
        finally:
            if traced is not None:  # (before SUBJECT's reset: a slow step's line names its call)
                end(traced[1])
                done(m.tag_of(msg), traced[0], time.monotonic() - now)
            SUBJECT.reset(subject)


_RUNNING: set[asyncio.Task[None]] = set()  # reports referenced until done (weak in the loop)


class _Reports:
    """One connection's `BESIDE` messages: each call's run one after the other, in the order
    they were read, beside the read loop; the connection closing does not stop them (the
    catalog still takes what the recorder reported before it was lost)."""

    def __init__(self, conn: Connection, who: Identity,
                 handle: Callable[[Identity, m.Inbound], Awaitable[None]],
                 handled: Callable[[str], Callable[[float], None]]) -> None:
        self.conn, self.who, self.handle, self.handled = conn, who, handle, handled
        self.last: dict[str, asyncio.Task[None]] = {}  # by call id: its latest report

    def run(self, msg: m.RecordSegment | m.RecordManifest) -> None:
        before = self.last.get(msg.call_id)
        task = asyncio.get_running_loop().create_task(self._report(before, msg))
        self.last[msg.call_id] = task
        _RUNNING.add(task)
        task.add_done_callback(functools.partial(self._done, msg.call_id))

    def _done(self, call_id: str, task: asyncio.Task[None]) -> None:
        _RUNNING.discard(task)
        if self.last.get(call_id) is task:
            del self.last[call_id]

    async def _report(self, before: asyncio.Task[None] | None,
                      msg: m.RecordSegment | m.RecordManifest) -> None:
        if before is not None:
            await asyncio.wait([before])
        started = time.monotonic()
        try:
            await self.handle(self.who, msg)
        except Refused as exc:
            self.conn.send(m.encode(m.Error(code=exc.code, message=exc.message,
                                            refused=m.tag_of(msg), call_id=msg.call_id)))
        except Exception:
            log.exception("handling %s from %s failed", type(msg).__name__, self.who.principal)
            self.conn.send(m.encode(m.Error(code="internal",
                                            message="the server could not do that")))
        finally:
            self.handled(m.tag_of(msg))(time.monotonic() - started)


_UNKNOWN: collections.deque[object] = collections.deque([None])  # never empty


def _read_ahead(ws: web.WebSocketResponse) -> collections.deque[object]:
    """The frames aiohttp has read from the socket and not yet handed to `receive()`:
    while there are, the frames corked for other connections wait to go out with those
    the next ones add (`Connection.flush_corked`). An aiohttp without that buffer: never
    empty, and corked frames go out at the end of the loop's turn."""
    buffer = getattr(getattr(ws, "_reader", None), "_buffer", None)
    return buffer if isinstance(buffer, collections.deque) else _UNKNOWN


async def _drain(conn: Connection) -> None:
    conn.close(int(WSCloseCode.GOING_AWAY), "bye")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(conn.wait_closed()), 2.0)
    await conn.stop()

