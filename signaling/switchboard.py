"""The switchboard: turns typed messages into routing transactions, log entries
and messages to the participants.

It only talks to the backend interfaces (`signaling.backend`), so the same code
runs on one node (memory) or many (Redis). Every state change is appended to
the session log *before* any client hears of it (`Batch.commit`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from . import conference, incall, jointwork
from . import events as ev
from . import messages as m
from .backend import MessageBus, Presences, Router, Scheduler, SessionLog, ring_timer
from .batch import Batch
from .callsteps import (
    SPECIALIST,
    TERMINAL,
    CallSteps,
    encode_identity,
    members_of,
    terminal_of,
)
from .errors import Refused
from .identity import Identity
from .model import AgentState, Call, CallState, QueueConfig
from .queuewatch import QueueWatch
from .recorders import RecordingSetup
from .recording import RECORDER, RecordingDesk
from .uscc import uscc_error

log = logging.getLogger(__name__)

IceServersProvider = Callable[[Identity], list[dict[str, Any]]]
"""`welcome.ice_servers` for a connection (per-connection TURN credentials: server/turn.py)."""

_members = members_of  # used by the recording desk


class Switchboard(CallSteps):
    def __init__(
        self,
        *,
        queues: Sequence[QueueConfig],
        router: Router,
        bus: MessageBus,
        scheduler: Scheduler,
        presences: Presences,
        log: SessionLog,
        clock: Callable[[], float] = time.time,
        resume_grace_s: float = 30.0,
        ice_servers: IceServersProvider | list[dict[str, Any]] | None = None,
        node_id: str = "local",
        recording: RecordingSetup | None = None,
    ) -> None:
        self.queues = {q.id: q for q in queues}
        self.router = router
        self.bus = bus
        self.scheduler = scheduler
        self.presences = presences
        self.log = log
        self.clock = clock
        self.resume_grace_s = resume_grace_s
        static = [] if callable(ice_servers) else list(ice_servers or [])
        self.ice_servers: IceServersProvider = (
            ice_servers if callable(ice_servers) else lambda who: static)
        self.node_id = node_id
        self.watch = QueueWatch(self)
        self.actions: jointwork.JointWork | None = None  # set by the server when enabled
        self.recording = RecordingDesk(self, recording)
        self._disconnecting: set[asyncio.Task[None]] = set()
        scheduler.set_handler(self.on_timer)

    # The steps other modules (conference, joint work, recording) build on.
    def batch(self) -> Batch:
        return Batch(self)

    async def dispatch(self) -> None:
        await self._dispatch()

    async def participants(self, call: Call) -> list[m.Participant]:
        return await self._participants(call)

    def set_status(self, batch: Batch, agent_id: str, status: AgentState, reason: str) -> None:
        self._status(batch, agent_id, status, reason)

    # ---- connections ------------------------------------------------------------

    async def connect(self, who: Identity, sink: Any, resume: str | None) -> int:
        """Attach a connection; sends `welcome`, re-syncs a resumed one. Returns its epoch."""
        principal = who.principal
        existing = await self.presences.get(principal)
        presence, resumed = await self.presences.connect(principal, resume)
        if existing is not None and not resumed:
            await self._release(who, "replaced")
        await self.scheduler.cancel(f"grace:{principal}")
        self.bus.attach(principal, who.role, sink)
        if who.role == SPECIALIST:
            await self._agent_join(who)
        queues = [m.QueueRef(id=q.id, name=q.name) for q in self._queues_for(who)]
        sink.send(
            m.encode(
                m.Welcome(
                    role=who.role,
                    id=who.id,
                    participant_id=principal,
                    name=who.name,
                    resume=presence.resume,
                    resumed=resumed,
                    ice_servers=self.ice_servers(who),
                    queues=queues,
                    site=who.site,
                )
            )
        )
        await self._resync(who, resumed)
        sink.send(m.encode(await self.watch.status_message()))
        if who.role == SPECIALIST:  # back and still available: calls may be waiting
            await self._dispatch()
        return presence.epoch

    async def disconnect(self, who: Identity, epoch: int, sink: Any) -> None:
        """The socket closed: keep the principal's place for the resume grace.

        Runs to the end even if the caller is cancelled (aiohttp may cancel the closing
        socket's handler): stopped halfway, a shared presence would stay `connected` and a
        lost recorder's sessions would never be handed on."""
        self.bus.detach(who.principal, sink)
        task = asyncio.ensure_future(self._disconnected(who, epoch))
        self._disconnecting.add(task)
        task.add_done_callback(self._disconnecting.discard)
        await asyncio.shield(task)

    async def settle(self) -> None:
        """Wait for disconnects still running (shutdown: before the session log closes)."""
        while self._disconnecting:
            await asyncio.gather(*list(self._disconnecting), return_exceptions=True)

    async def _disconnected(self, who: Identity, epoch: int) -> None:
        try:
            await self._release_connection(who, epoch)
        except Exception:
            log.exception("disconnecting %s failed", who.principal)

    async def _release_connection(self, who: Identity, epoch: int) -> None:
        if not await self.presences.disconnect(who.principal, epoch):
            return
        if who.role == RECORDER:  # its media is gone with it: no grace, hand its sessions on
            await self.presences.drop(who.principal, epoch)
            await self.recording.recorder_left(who)
            return
        if who.role == SPECIALIST:
            await self.router.set_connected(who.id, False)
            agent = await self.router.get_agent(who.id)
            if agent is not None and agent.state == AgentState.RINGING and agent.call_id:
                await self._withdraw(agent.call_id, who.id, "agent_lost")
                await self._dispatch()
        await self.scheduler.schedule(
            f"grace:{who.principal}",
            self.resume_grace_s,
            "grace",
            {"identity": encode_identity(who), "epoch": epoch},
        )

    # ---- messages ---------------------------------------------------------------

    async def handle(self, who: Identity, msg: m.Inbound) -> None:
        """Carry out one validated message; raises Refused (nothing changed) otherwise."""
        handler = _HANDLERS.get((who.role, type(msg))) or _HANDLERS.get(("*", type(msg)))
        if handler is None:
            tag = type(msg).__struct_config__.tag
            raise Refused("forbidden", f"a {who.role} cannot send {tag}")
        await handler(self, who, msg)

    async def _call_request(self, who: Identity, msg: m.CallRequest) -> None:
        enterprise = _enterprise(msg.enterprise)
        for call in await self.router.calls_of_terminal(who.id):
            raise Refused("call_in_progress", f"call {call.id} is still {call.state.value}")
        reason = await self.router.check_open(msg.queue) or await self.recording.refusal()
        now = self.clock()
        call = Call(
            id="c_" + secrets.token_hex(8),
            session_id=str(uuid.uuid4()),
            queue=msg.queue,
            terminal_id=who.id,
            enqueued_at=now,
            priority=self.queues[msg.queue].priority,
            context={"terminal": encode_identity(who), "enterprise": enterprise},
        )
        batch = Batch(self)
        site = who.site
        batch.event(
            ev.QUEUED,
            call,
            who.principal,
            queue=msg.queue,
            terminal_id=who.id,
            terminal_name=who.name,
            site_id=site.id if site else None,
            site_name=site.name if site else None,
            enterprise=enterprise,
            node_id=self.node_id,
        )
        if reason is not None:
            batch.event(ev.REJECTED, call, None, reason=reason)
            batch.send(who.principal, m.CallRejected(queue=msg.queue, reason=reason))
            await batch.commit()
            return
        # Logged before it is queued: another node may offer it as soon as it is queued.
        await self.log.append(batch.events)
        batch.events.clear()
        try:
            position = await self.router.enqueue(call)
        except Exception:
            batch.event(ev.REJECTED, call, None, reason="internal")
            await batch.commit()
            raise
        estimate = await self.watch.estimate(call.queue, position)
        self.watch.sent_position(call.id, position)
        batch.send(
            who.principal,
            m.CallQueued(
                call_id=call.id, queue=call.queue, position=position, estimated_wait_s=estimate
            ),
        )
        await batch.commit()
        config = self.queues[call.queue]
        if config.overflow_after_s is not None and config.overflow_to:
            await self.scheduler.schedule(
                f"overflow:{call.id}", config.overflow_after_s, "overflow", {"call_id": call.id}
            )
        await self._dispatch()
        self.watch.changed(call.queue)

    async def _call_cancel(self, who: Identity, msg: m.CallCancel) -> None:
        call = await self._own_call(who, msg.call_id)
        if call.state == CallState.CONNECTED:
            await self._end(call, "hangup", who.principal)
            return
        await self._abandon(call.id, "cancelled")

    async def _agent_status(self, who: Identity, msg: m.AgentStatus) -> None:
        status = AgentState(msg.status)
        old = await self.router.set_status(who.id, status, self.clock())
        if old is None:
            return
        if old == AgentState.WRAP_UP:
            await self.scheduler.cancel(f"wrapup:{who.id}")
        batch = Batch(self)
        self._status(batch, who.id, status, "requested")
        await batch.commit()
        if status == AgentState.AVAILABLE:
            await self._dispatch()
        self.watch.changed_all()

    async def _call_accept(self, who: Identity, msg: m.CallAccept) -> None:
        pending = await self.router.get_call(msg.call_id)
        if pending is not None and pending.is_invitation:
            await conference.accept(self, who, pending, msg.offer)
            return
        now = self.clock()
        call = await self.router.accept(msg.call_id, who.id, now, msg.offer)
        await self.scheduler.cancel(ring_timer(call.id, call.offers))
        await self.scheduler.cancel(f"overflow:{call.id}")
        self.watch.forget(call.id)
        batch = Batch(self)
        wait_s = now - call.enqueued_at
        batch.event(
            ev.ANSWERED,
            call,
            who.principal,
            agent_id=who.id,
            agent_name=who.name,
            offer=call.offers,
            wait_s=round(wait_s, 3),
        )
        terminal = terminal_of(call)
        if call.answered_at == now:
            batch.event(
                ev.PARTICIPANT_JOINED,
                call,
                terminal.principal,
                participant_id=terminal.principal,
                role=TERMINAL,
                principal_id=terminal.id,
                name=terminal.name,
            )
        batch.event(
            ev.PARTICIPANT_JOINED,
            call,
            who.principal,
            participant_id=who.principal,
            role=SPECIALIST,
            principal_id=who.id,
            name=who.name,
        )
        self._status(batch, who.id, AgentState.IN_CALL, "answered")
        recording = await self.recording.connected(batch, call)
        participants = await self._participants(call)
        for member in participants:
            if member.role == RECORDER:
                continue
            batch.send(
                member.id,
                m.CallConnected(
                    call_id=call.id,
                    session_id=call.session_id,
                    you=member.id,
                    participants=participants,
                    recording=recording,
                ),
            )
        await batch.commit()
        self.watch.changed(call.queue)

    async def _call_decline(self, who: Identity, msg: m.CallDecline) -> None:
        call = await self.router.decline(msg.call_id, who.id, self.clock(), msg.offer)
        await self.scheduler.cancel(ring_timer(call.id, call.offers))
        await self.scheduler.schedule(  # the decliner may be offered it again: dispatch then
            f"unblock:{call.id}:{who.id}", self.queues[call.queue].decline_block_s,
            "unblock", {"call_id": call.id})
        batch = Batch(self)
        batch.event(ev.DECLINED, call, who.principal, agent_id=who.id, offer=call.offers)
        batch.send(who.principal,
                   m.CallWithdrawn(call_id=call.id, offer=call.offers, reason="declined"))
        self._status(batch, who.id, AgentState.AVAILABLE, "declined")
        await batch.commit()
        if call.is_invitation:
            await conference.after_refusal(self, call, "declined")
        await self._dispatch()

    async def _call_hangup(self, who: Identity, msg: m.CallHangup) -> None:
        call = await self._member_call(who, msg.call_id)
        if call.state != CallState.CONNECTED:
            if who.role != TERMINAL:
                raise Refused("not_in_call", f"call {call.id} is not connected")
            await self._abandon(call.id, "cancelled")
            return
        if who.role == SPECIALIST and len(call.agents) > 1:
            await conference.leave(self, call, who.id, "left")
            return
        await self._end(call, "hangup", who.principal)

    async def _invite(self, who: Identity, msg: m.CallInvite | m.CallTransfer) -> None:
        await conference.invite(self, who, msg)

    async def _wrapup_done(self, who: Identity, msg: m.AgentWrapupDone) -> None:
        del msg
        if not await self._finish_wrapup(who.id, "wrapup_done"):
            raise Refused("not_in_wrapup", "you are not in wrap-up")

    async def _rate(self, who: Identity, msg: m.SessionRate) -> None:
        await self._session_note(
            who, msg.session_id, ev.RATING, "rating", score=msg.score, comment=msg.comment or ""
        )

    async def _wrapup(self, who: Identity, msg: m.SessionWrapup) -> None:
        await self._session_note(
            who,
            msg.session_id,
            ev.WRAPUP,
            "wrapup",
            agent_id=who.id,
            outcome=msg.outcome,
            notes=msg.notes,
        )

    async def _ping(self, who: Identity, msg: m.Ping) -> None:
        del msg
        await self.bus.send(who.principal, m.encode(m.Pong()))

    async def _hello_again(self, who: Identity, msg: m.Hello) -> None:
        del who, msg
        raise Refused("already_authenticated", "hello was already accepted on this connection")


def _enterprise(value: m.Enterprise | None) -> dict[str, str] | None:
    if value is None or not (value.name or value.uscc):
        return None
    if value.uscc:
        problem = uscc_error(value.uscc)
        if problem is not None:
            raise Refused("invalid_uscc", problem)
    return {k: v for k, v in (("name", value.name), ("uscc", value.uscc)) if v}


_Handler = Callable[[Switchboard, Identity, Any], Any]
_HANDLERS: dict[tuple[str, type], _Handler] = {
    (TERMINAL, m.CallRequest): Switchboard._call_request,
    (TERMINAL, m.CallCancel): Switchboard._call_cancel,
    (TERMINAL, m.SessionRate): Switchboard._rate,
    (SPECIALIST, m.AgentStatus): Switchboard._agent_status,
    (SPECIALIST, m.CallAccept): Switchboard._call_accept,
    (SPECIALIST, m.CallDecline): Switchboard._call_decline,
    (SPECIALIST, m.CallInvite): Switchboard._invite,
    (SPECIALIST, m.CallTransfer): Switchboard._invite,
    (SPECIALIST, m.AgentWrapupDone): Switchboard._wrapup_done,
    (SPECIALIST, m.SessionWrapup): Switchboard._wrapup,
    ("*", m.CallHangup): Switchboard._call_hangup,
    ("*", m.RtcDescription): incall.relay,
    ("*", m.RtcCandidate): incall.relay,
    ("*", m.ChatSend): incall.chat,
    ("*", m.Ping): Switchboard._ping,
    ("*", m.Hello): Switchboard._hello_again,
    (RECORDER, m.RecordSegment): lambda board, who, msg: board.recording.segment(who, msg),
    (RECORDER, m.RecordManifest): lambda board, who, msg: board.recording.manifest(who, msg),
    (SPECIALIST, m.ActionStart): jointwork.on_action_start,
    (SPECIALIST, m.ActionSign): jointwork.on_action_sign,
    (SPECIALIST, m.ActionReject): jointwork.on_action_reject,
}
