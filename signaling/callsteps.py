"""The steps the switchboard's handlers share: offering, ending, requeueing, timers.

A mixin of `Switchboard`, split out so each module stays one readable concept:
`switchboard.py` reads messages, this module carries out what they set going.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec

from . import conference
from . import events as ev
from . import messages as m
from .backend import MessageBus, Presences, Router, Scheduler, SessionLog, ring_timer
from .batch import Batch
from .errors import Refused
from .identity import Identity, principal_of
from .model import Agent, AgentState, Call, CallState, Offer, QueueConfig
from .queuewatch import QueueWatch
from .recording import RecordingDesk
from .resync import resync

if TYPE_CHECKING:
    from .switchboard import Switchboard

log = logging.getLogger(__name__)

SPECIALIST: Final = "specialist"
TERMINAL: Final = "terminal"


class CallSteps:
    queues: dict[str, QueueConfig]
    router: Router
    bus: MessageBus
    scheduler: Scheduler
    presences: Presences
    log: SessionLog
    clock: Callable[[], float]
    watch: QueueWatch
    recording: RecordingDesk
    node_id: str

    @property
    def _board(self) -> Switchboard:
        """This mixin is only ever part of a Switchboard."""
        return cast("Switchboard", self)

    def utcnow(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    # ---- timers -----------------------------------------------------------------

    async def on_timer(self, kind: str, payload: dict[str, Any]) -> None:
        """A timer fired; perhaps again, when the node that ran it first died before the
        end (`server/cluster/scheduler.py`). Each kind starts with one atomic transition,
        which a second run finds made (so it changes nothing twice); the second run then
        still does what the first may not have reached: dispatch, or settle the calls of a
        principal whose presence is already dropped."""
        done = True
        try:
            if kind == "ring":
                done = await self._ring_timeout(
                    payload["call_id"], payload["agent_id"], payload.get("offer"))
            elif kind == "wrapup":
                done = await self._finish_wrapup(payload["agent_id"], "wrapup_timeout")
            elif kind == "overflow":
                done = await self._overflow(payload["call_id"])
            elif kind == "unblock":  # a decline block ended: dispatch
                done = False
            elif kind == "grace":
                who = decode_identity(payload["identity"])
                if await self.presences.drop(who.principal, payload["epoch"]) or (
                    await self.presences.get(who.principal) is None
                ):
                    await self._release(who, "lost")
            if not done:
                await self._dispatch()
        except Refused as exc:
            log.info("timer %s %s: %s", kind, payload, exc)

    async def _ring_timeout(self, call_id: str, agent_id: str, offer: int | None) -> bool:
        result = await self.router.timeout(call_id, agent_id, self.clock(), offer)
        if result is None:
            return False
        call, went_away = result
        actor = principal_of(SPECIALIST, agent_id)
        batch = Batch(self)
        batch.event(ev.MISSED, call, actor, agent_id=agent_id, offer=call.offers)
        self._withdrawn(batch, call, agent_id, "timeout")
        if went_away:
            self._status(batch, agent_id, AgentState.AWAY, "missed_offers")
        else:
            self._status(batch, agent_id, AgentState.AVAILABLE, "missed_offer")
        await batch.commit()
        if call.is_invitation:
            await conference.after_refusal(self._board, call, "no_answer")
        await self._dispatch()
        return True

    async def _overflow(self, call_id: str) -> bool:
        if not await self.router.overflow(call_id):
            return False
        call = await self.router.get_call(call_id)
        if call is None:
            return False
        batch = Batch(self)
        batch.event(ev.OVERFLOWED, call, None, to=self.queues[call.queue].overflow_to)
        await batch.commit()
        await self._dispatch()
        return True

    # ---- shared steps -----------------------------------------------------------

    async def _dispatch(self) -> None:
        """Offer what the router matched, all in one batch: logged before anything else
        (a cancel, say) can withdraw one of them.

        Ring timers are set before the batch (a node that dies before sending still has
        its offers withdrawn) and set again after it: the ring time counts from the offer
        sent, as the console's countdown does, however long the log took."""
        offers = await self.router.dispatch(self.clock())
        if not offers:
            return
        batch = Batch(self)
        rung: list[Offer] = []
        for offer in offers:
            call = await self.router.get_call(offer.call_id)
            if call is not None:
                self._offer(batch, call, offer)
                rung.append(offer)
        await self._ring_timers(rung)
        await batch.commit()
        await self._ring_timers(rung)

    async def _ring_timers(self, offers: list[Offer]) -> None:
        for offer in offers:
            await self.scheduler.schedule(
                ring_timer(offer.call_id, offer.offer),
                self.queues[offer.queue].ring_timeout_s,
                "ring",
                {"call_id": offer.call_id, "agent_id": offer.agent_id, "offer": offer.offer},
            )

    def _offer(self, batch: Batch, call: Call, offer: Offer) -> None:
        actor = principal_of(SPECIALIST, offer.agent_id)
        batch.event(
            ev.OFFERED,
            call,
            actor,
            agent_id=offer.agent_id,
            offer=offer.offer,
            queue=call.queue,
            via_overflow=offer.via_overflow,
        )
        self._status(batch, offer.agent_id, AgentState.RINGING, "offered")
        batch.send(actor, self._offered_message(call, offer.offer, offer.via_overflow))

    def _offered_message(self, call: Call, offer: int, via_overflow: bool) -> m.CallOffered:
        terminal = terminal_of(call)
        enterprise = call.context.get("enterprise")
        return m.CallOffered(
            call_id=call.id,
            offer=offer,
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
        await self.scheduler.cancel(ring_timer(call_id, call.offers))
        batch = Batch(self)
        self._withdrawn(batch, call, agent_id, reason)
        self._status(batch, agent_id, AgentState.AVAILABLE, reason)
        await batch.commit()

    def _withdrawn(self, batch: Batch, call: Call, agent_id: str, reason: str) -> None:
        """The offer now over (`call.offers`): logged, and the specialist told."""
        batch.event(ev.WITHDRAWN, call, None, agent_id=agent_id, offer=call.offers, reason=reason)
        batch.send(principal_of(SPECIALIST, agent_id),
                   m.CallWithdrawn(call_id=call.id, offer=call.offers, reason=reason))

    async def _abandon(self, call_id: str, reason: str) -> None:
        call = await self.router.remove(call_id, self.clock())
        if call is None:
            return
        await self.scheduler.cancel(f"overflow:{call_id}")
        self.watch.forget(call_id)
        batch = Batch(self)
        if call.ringing_agent is not None:
            await self.scheduler.cancel(ring_timer(call_id, call.offers))
            self._withdrawn(batch, call, call.ringing_agent, reason)
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
        members = members_of(call)
        invitations = await conference.pending_invitations(self._board, call)
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
            await conference.cancel(self._board, invitation.id, "call_ended")
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
                batch.send(
                    member.id,
                    m.ParticipantLeft(call_id=call_id, participant=agent, reason="agent_lost"),
                )
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
        if call is None or who.principal not in members_of(call):
            raise Refused("not_in_call", f"call {call_id} is not yours")
        return call

    async def _participants(self, call: Call) -> list[m.Participant]:
        terminal = terminal_of(call)
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
        await self.router.agent_join(
            Agent(id=who.id, name=who.name, skills=dict(who.skills), department=who.department),
            self.clock(),
        )
        await self.router.set_connected(who.id, True)
        self.watch.changed_all()

    def _queues_for(self, who: Identity) -> list[QueueConfig]:
        if who.role == SPECIALIST:
            return [q for q in self.queues.values() if q.id in who.skills]
        return list(self.queues.values())

    async def _resync(self, who: Identity, resumed: bool) -> None:
        """Tell a (re)connected client where it stands."""
        await resync(self._board, who, resumed)


def members_of(call: Call) -> set[str]:
    return {principal_of(TERMINAL, call.terminal_id)} | {
        principal_of(SPECIALIST, a) for a in call.agents
    }


def terminal_of(call: Call) -> Identity:
    return decode_identity(call.context["terminal"])


def encode_identity(who: Identity) -> dict[str, Any]:
    return msgspec.to_builtins(who)  # type: ignore[no-any-return]


def decode_identity(data: dict[str, Any]) -> Identity:
    return msgspec.convert(data, Identity)
