"""The switchboard: turns typed messages into routing transactions, log entries
and messages to the participants.

It only talks to the backend interfaces (`signaling.backend`), so the same code
runs on one node (memory) or many (Redis). Every state change is appended to
the session log *before* any client hears of it (`Batch.commit`).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Final

from . import conference, jointwork
from . import events as ev
from . import messages as m
from .backend import MessageBus, Presences, Router, Scheduler, SessionLog
from .errors import Refused
from .identity import Identity, principal_of
from .model import AgentState, Call, CallState, Offer, QueueConfig
from .queuewatch import QueueWatch
from .recorders import RecordingSetup
from .recording import RECORDER, RecordingDesk
from .uscc import uscc_error

log = logging.getLogger(__name__)

SPECIALIST: Final = "specialist"
TERMINAL: Final = "terminal"


class Batch:
    """Log entries and messages of one transaction: logged first, then sent."""

    def __init__(self, board: Switchboard) -> None:
        self._board = board
        self.events: list[ev.LogEvent] = []
        self.sends: list[tuple[str, m.Message]] = []

    def event(self, type_: str, call: Call | None, actor: str | None, **data: Any) -> None:
        self.events.append(
            ev.LogEvent(
                type=type_,
                ts=self._board.utcnow(),
                session_id=call.session_id if call else None,
                call_id=call.id if call else None,
                actor=actor,
                data=data,
            )
        )

    def send(self, principal: str, message: m.Message) -> None:
        self.sends.append((principal, message))

    async def commit(self) -> None:
        if self.events:
            await self._board.log.append(self.events)
        for principal, message in self.sends:
            await self._board.bus.send(principal, m.encode(message))


class Switchboard:
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
        ice_servers: list[dict[str, Any]] | None = None,
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
        self.ice_servers = ice_servers or []
        self.node_id = node_id
        self.watch = QueueWatch(self)
        self.actions: jointwork.JointWork | None = None  # set by the server when enabled
        self.recording = RecordingDesk(self, recording)
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

    def utcnow(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

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
                    ice_servers=self.ice_servers,
                    queues=queues,
                    site=who.site,
                )
            )
        )
        await self._resync(who, resumed)
        sink.send(m.encode(await self.watch.status_message()))
        return presence.epoch

    async def disconnect(self, who: Identity, epoch: int, sink: Any) -> None:
        """The socket closed: keep the principal's place for the resume grace."""
        self.bus.detach(who.principal, sink)
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
            {"identity": _encode_identity(who), "epoch": epoch},
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
            context={"terminal": _encode_identity(who), "enterprise": enterprise},
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
        position = await self.router.enqueue(call)
        try:
            await self.log.append(batch.events)
        except Exception:
            await self.router.remove(call.id, now)
            raise
        batch.events.clear()
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
            await conference.accept(self, who, pending)
            return
        now = self.clock()
        call = await self.router.accept(msg.call_id, who.id, now)
        await self.scheduler.cancel(f"ring:{call.id}")
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
            wait_s=round(wait_s, 3),
        )
        terminal = _terminal_of(call)
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
        call = await self.router.decline(msg.call_id, who.id, self.clock())
        await self.scheduler.cancel(f"ring:{call.id}")
        batch = Batch(self)
        batch.event(ev.DECLINED, call, who.principal, agent_id=who.id)
        batch.send(who.principal, m.CallWithdrawn(call_id=call.id, reason="declined"))
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

    async def _relay(self, who: Identity, msg: m.RtcDescription | m.RtcCandidate) -> None:
        call = await self.router.get_call(msg.call_id)
        members = _members(call) if call and call.state == CallState.CONNECTED else set()
        direct = who.principal in members and msg.to in members and msg.to != who.principal
        if not direct and not (call and await self.recording.relay_allowed(
                call, who.principal, msg.to, members)):
            raise Refused("not_in_call", f"{msg.to} is not another participant of your call")
        relay: m.Message
        if isinstance(msg, m.RtcDescription):
            relay = m.RtcDescriptionRelay(
                call_id=msg.call_id, to=msg.to, sender=who.principal, description=msg.description
            )
        else:
            relay = m.RtcCandidateRelay(
                call_id=msg.call_id, to=msg.to, sender=who.principal, candidate=msg.candidate
            )
        await self.bus.send(msg.to, m.encode(relay))

    async def _chat(self, who: Identity, msg: m.ChatSend) -> None:
        call = await self._member_call(who, msg.call_id)
        if call.state != CallState.CONNECTED:
            raise Refused("not_in_call", f"call {call.id} is not connected")
        batch = Batch(self)
        batch.event(
            ev.CHAT,
            call,
            who.principal,
            **{"from": who.principal, "name": who.name, "text": msg.text},
        )
        ts = batch.events[-1].ts.isoformat()
        for member in _members(call):
            batch.send(
                member,
                m.ChatMessage(
                    call_id=call.id, sender=who.principal, name=who.name, text=msg.text, ts=ts
                ),
            )
        await batch.commit()

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

    # ---- timers -----------------------------------------------------------------

    async def on_timer(self, kind: str, payload: dict[str, Any]) -> None:
        try:
            if kind == "ring":
                await self._ring_timeout(payload["call_id"], payload["agent_id"])
            elif kind == "wrapup":
                await self._finish_wrapup(payload["agent_id"], "wrapup_timeout")
            elif kind == "overflow":
                await self._overflow(payload["call_id"])
            elif kind == "grace":
                who = _decode_identity(payload["identity"])
                if await self.presences.drop(who.principal, payload["epoch"]):
                    await self._release(who, "lost")
        except Refused as exc:
            log.info("timer %s %s: %s", kind, payload, exc)

    async def _ring_timeout(self, call_id: str, agent_id: str) -> None:
        result = await self.router.timeout(call_id, agent_id, self.clock())
        if result is None:
            return
        call, went_away = result
        actor = principal_of(SPECIALIST, agent_id)
        batch = Batch(self)
        batch.event(ev.MISSED, call, actor, agent_id=agent_id)
        batch.event(ev.WITHDRAWN, call, None, agent_id=agent_id, reason="timeout")
        batch.send(actor, m.CallWithdrawn(call_id=call_id, reason="timeout"))
        if went_away:
            self._status(batch, agent_id, AgentState.AWAY, "missed_offers")
        else:
            self._status(batch, agent_id, AgentState.AVAILABLE, "missed_offer")
        await batch.commit()
        if call.is_invitation:
            await conference.after_refusal(self, call, "no_answer")
        await self._dispatch()

    async def _overflow(self, call_id: str) -> None:
        if not await self.router.overflow(call_id):
            return
        call = await self.router.get_call(call_id)
        if call is None:
            return
        batch = Batch(self)
        batch.event(ev.OVERFLOWED, call, None, to=self.queues[call.queue].overflow_to)
        await batch.commit()
        await self._dispatch()

    # ---- shared steps -----------------------------------------------------------

    async def _dispatch(self) -> None:
        for offer in await self.router.dispatch(self.clock()):
            await self._offer(offer)

    async def _offer(self, offer: Offer) -> None:
        call = await self.router.get_call(offer.call_id)
        if call is None:
            return
        config = self.queues[call.queue]
        actor = principal_of(SPECIALIST, offer.agent_id)
        batch = Batch(self)
        batch.event(
            ev.OFFERED,
            call,
            actor,
            agent_id=offer.agent_id,
            queue=call.queue,
            via_overflow=offer.via_overflow,
        )
        self._status(batch, offer.agent_id, AgentState.RINGING, "offered")
        batch.send(actor, self._offered_message(call, offer.via_overflow))
        await self.scheduler.schedule(
            f"ring:{call.id}",
            config.ring_timeout_s,
            "ring",
            {"call_id": call.id, "agent_id": offer.agent_id},
        )
        await batch.commit()

    def _offered_message(self, call: Call, via_overflow: bool) -> m.CallOffered:
        terminal = _terminal_of(call)
        enterprise = call.context.get("enterprise")
        return m.CallOffered(
            call_id=call.id,
            queue=call.queue,
            terminal=terminal.terminal_info(),
            ring_timeout_s=self.queues[call.queue].ring_timeout_s,
            enterprise=m.Enterprise(**enterprise) if enterprise else None,
            overflow_from=call.queue if via_overflow else None,
            joins=call.joins,
            invited_by=call.context.get("invited_by") if call.is_invitation else None,
            transfer=call.transfer_from is not None,
        )

    async def _withdraw(self, call_id: str, agent_id: str, reason: str) -> None:
        call = await self.router.withdraw(call_id, agent_id, self.clock())
        if call is None:
            return
        await self.scheduler.cancel(f"ring:{call_id}")
        batch = Batch(self)
        batch.event(ev.WITHDRAWN, call, None, agent_id=agent_id, reason=reason)
        batch.send(
            principal_of(SPECIALIST, agent_id), m.CallWithdrawn(call_id=call_id, reason=reason)
        )
        self._status(batch, agent_id, AgentState.AVAILABLE, reason)
        await batch.commit()

    async def _abandon(self, call_id: str, reason: str) -> None:
        call = await self.router.remove(call_id, self.clock())
        if call is None:
            return
        await self.scheduler.cancel(f"overflow:{call_id}")
        self.watch.forget(call_id)
        batch = Batch(self)
        if call.ringing_agent is not None:
            await self.scheduler.cancel(f"ring:{call_id}")
            agent = principal_of(SPECIALIST, call.ringing_agent)
            batch.event(ev.WITHDRAWN, call, None, agent_id=call.ringing_agent, reason=reason)
            batch.send(agent, m.CallWithdrawn(call_id=call_id, reason=reason))
            self._status(batch, call.ringing_agent, AgentState.AVAILABLE, reason)
        batch.event(ev.ABANDONED, call, principal_of(TERMINAL, call.terminal_id), reason=reason)
        batch.send(
            principal_of(TERMINAL, call.terminal_id),
            m.CallEnded(call_id=call_id, session_id=call.session_id, reason=reason),
        )
        await batch.commit()
        await self._dispatch()
        self.watch.changed(call.queue)

    async def _end(self, call: Call, reason: str, by: str | None) -> None:
        members = _members(call)
        invitations = await conference.pending_invitations(self, call)
        ended = await self.router.hangup(call.id, self.clock())
        if ended is None:
            return
        batch = Batch(self)
        batch.event(ev.ENDED, ended, by, reason=reason, by=by)
        for member in sorted(members):
            batch.event(ev.PARTICIPANT_LEFT, ended, member, participant_id=member, reason=reason)
            batch.send(
                member,
                m.CallEnded(call_id=call.id, session_id=call.session_id, reason=reason, by=by),
            )
        wrapup_s = self.queues[call.queue].wrapup_s
        for agent_id in ended.agents:
            self._status(batch, agent_id, AgentState.WRAP_UP, reason)
            await self.scheduler.schedule(
                f"wrapup:{agent_id}", wrapup_s, "wrapup", {"agent_id": agent_id}
            )
        await self.recording.ended(batch, ended, reason)
        await batch.commit()
        for invitation in invitations:
            await conference.cancel(self, invitation.id, "call_ended")
        self.watch.changed(call.queue)

    async def _finish_wrapup(self, agent_id: str, reason: str) -> bool:
        if not await self.router.wrapup_done(agent_id, self.clock()):
            return False
        await self.scheduler.cancel(f"wrapup:{agent_id}")
        batch = Batch(self)
        self._status(batch, agent_id, AgentState.AVAILABLE, reason)
        await batch.commit()
        await self._dispatch()
        self.watch.changed_all()
        return True

    async def _release(self, who: Identity, reason: str) -> None:
        """The principal is gone for good (grace over, or replaced): settle its calls."""
        if who.role == TERMINAL:
            for call in await self.router.calls_of_terminal(who.id):
                if call.is_invitation:
                    continue  # taken back when the call it joins ends
                if call.state == CallState.CONNECTED:
                    await self._end(call, "terminal_lost", who.principal)
                else:
                    await self._abandon(call.id, "terminal_lost")
            return
        if who.role != SPECIALIST:
            return
        agent = await self.router.get_agent(who.id)
        if agent is None:
            return
        if agent.call_id and agent.state == AgentState.RINGING:
            await self._withdraw(agent.call_id, who.id, "agent_lost")
        elif agent.call_id and agent.state == AgentState.IN_CALL:
            await self._requeue(agent.call_id, who.id)
        await self.scheduler.cancel(f"wrapup:{who.id}")
        await self.router.agent_leave(who.id)
        batch = Batch(self)
        batch.event(
            ev.AGENT_STATUS,
            None,
            who.principal,
            agent_id=who.id,
            old=agent.state.value,
            new="offline",
            reason=reason,
        )
        await batch.commit()
        await self._dispatch()
        self.watch.changed_all()

    async def _requeue(self, call_id: str, agent_id: str) -> None:
        call = await self.router.requeue(call_id, agent_id, self.clock())
        if call is None:
            return
        agent = principal_of(SPECIALIST, agent_id)
        batch = Batch(self)
        batch.event(ev.PARTICIPANT_LEFT, call, agent, participant_id=agent, reason="agent_lost")
        if call.state == CallState.CONNECTED:  # other specialists stay with the caller
            for member in await self._participants(call):
                batch.send(member.id, m.ParticipantLeft(call_id=call_id, participant=agent,
                                                        reason="agent_lost"))
        if call.state == CallState.QUEUED:
            batch.event(ev.REQUEUED, call, None, agent_id=agent_id, reason="agent_lost")
            await self.recording.ended(batch, call, "requeued")
            position = await self.router.position(call_id) or 1
            estimate = await self.watch.estimate(call.queue, position)
            self.watch.sent_position(call_id, position)
            batch.send(
                principal_of(TERMINAL, call.terminal_id),
                m.CallRequeued(
                    call_id=call_id,
                    position=position,
                    estimated_wait_s=estimate,
                    reason="agent_lost",
                ),
            )
        await batch.commit()
        await self._dispatch()

    def _status(self, batch: Batch, agent_id: str, status: AgentState, reason: str) -> None:
        actor = principal_of(SPECIALIST, agent_id)
        batch.event(
            ev.AGENT_STATUS, None, actor, agent_id=agent_id, new=status.value, reason=reason
        )
        batch.send(actor, m.AgentStatusChanged(status=status.value, reason=reason))

    async def _session_note(
        self, who: Identity, session_id: str, type_: str, what: Any, **data: Any
    ) -> None:
        members = await self.log.session_members(session_id)
        if members is None or who.principal not in members:
            raise Refused("not_in_session", f"you took no part in session {session_id}")
        batch = Batch(self)
        batch.events.append(
            ev.LogEvent(
                type=type_, ts=self.utcnow(), session_id=session_id, actor=who.principal, data=data
            )
        )
        batch.send(who.principal, m.Saved(what=what, session_id=session_id))
        await batch.commit()

    async def _own_call(self, who: Identity, call_id: str) -> Call:
        call = await self.router.get_call(call_id)
        if call is None or call.terminal_id != who.id or call.is_invitation:
            raise Refused("not_in_call", f"call {call_id} is not yours")
        return call

    async def _member_call(self, who: Identity, call_id: str) -> Call:
        call = await self.router.get_call(call_id)
        if call is None or who.principal not in _members(call):
            raise Refused("not_in_call", f"call {call_id} is not yours")
        return call

    async def _participants(self, call: Call) -> list[m.Participant]:
        terminal = _terminal_of(call)
        people = [m.Participant(id=terminal.principal, role=TERMINAL, name=terminal.name)]
        for agent_id in call.agents:
            agent = await self.router.get_agent(agent_id)
            name = agent.name if agent else agent_id
            people.append(
                m.Participant(id=principal_of(SPECIALIST, agent_id), role=SPECIALIST, name=name)
            )
        people.extend(await self.recording.participants(call))
        return people

    async def _agent_join(self, who: Identity) -> None:
        from .model import Agent

        agent = await self.router.agent_join(
            Agent(id=who.id, name=who.name, skills=dict(who.skills), department=who.department),
            self.clock(),
        )
        await self.router.set_connected(who.id, True)
        del agent
        self.watch.changed_all()

    def _queues_for(self, who: Identity) -> list[QueueConfig]:
        if who.role == SPECIALIST:
            return [q for q in self.queues.values() if q.id in who.skills]
        return list(self.queues.values())

    async def _resync(self, who: Identity, resumed: bool) -> None:
        """Tell a (re)connected client where it stands."""
        from .resync import resync

        await resync(self, who, resumed)


def _members(call: Call) -> set[str]:
    return {principal_of(TERMINAL, call.terminal_id)} | {
        principal_of(SPECIALIST, a) for a in call.agents
    }


def _terminal_of(call: Call) -> Identity:
    return _decode_identity(call.context["terminal"])


def _enterprise(value: m.Enterprise | None) -> dict[str, str] | None:
    if value is None or not (value.name or value.uscc):
        return None
    if value.uscc:
        problem = uscc_error(value.uscc)
        if problem is not None:
            raise Refused("invalid_uscc", problem)
    return {k: v for k, v in (("name", value.name), ("uscc", value.uscc)) if v}


def _encode_identity(who: Identity) -> dict[str, Any]:
    import msgspec

    return msgspec.to_builtins(who)  # type: ignore[no-any-return]


def _decode_identity(data: dict[str, Any]) -> Identity:
    import msgspec

    return msgspec.convert(data, Identity)


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
    ("*", m.RtcDescription): Switchboard._relay,
    ("*", m.RtcCandidate): Switchboard._relay,
    ("*", m.ChatSend): Switchboard._chat,
    ("*", m.Ping): Switchboard._ping,
    ("*", m.Hello): Switchboard._hello_again,
    (RECORDER, m.RecordSegment): lambda board, who, msg: board.recording.segment(who, msg),
    (RECORDER, m.RecordManifest): lambda board, who, msg: board.recording.manifest(who, msg),
    (SPECIALIST, m.ActionStart): jointwork.on_action_start,
    (SPECIALIST, m.ActionSign): jointwork.on_action_sign,
    (SPECIALIST, m.ActionReject): jointwork.on_action_reject,
}
