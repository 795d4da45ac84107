"""The switchboard: which step carries out each message, timer and connection event.

Each step (`offers`, `endings`, `conference`, `relay`, ...) is a plain function of
the node's `Services` that fills an `Outbox`; the switchboard commits it
(`signaling.commit`: logged before anyone hears of it, then sent); a relay step
(`rtc.*`) only names the message to forward, which is sent at once. It holds no
rules of its own: the same steps run on one node (memory) or many (Redis).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from . import (
    conference,
    connections,
    endings,
    handoff,
    joint_actions,
    offers,
    recording,
    relay,
    resume,
    timers,
)
from . import forms as form_steps
from . import messages as m
from .commit import commit, fill
from .documents import document_request
from .errors import FENCED, Refused
from .identity import Identity, Role, decode_identity
from .outbox import Outbox
from .requests import call_request
from .retry import REPORT_RETRY_S, after_failure, retrying
from .services import Services

log = logging.getLogger(__name__)

Step = Callable[[Services, Identity, Any], Awaitable[Outbox]]

# Waits between attempts of a failed disconnect: about a minute in all, longer than a
# Redis restart or a database failover, short enough not to hold a shutdown long.
DISCONNECT_RETRY_S: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0)


async def _ping(s: Services, who: Identity, msg: m.Ping) -> Outbox:
    del msg
    out = s.outbox()
    out.send(who.principal, m.Pong())
    return out


async def _hello_again(s: Services, who: Identity, msg: m.Hello) -> Outbox:
    del s, who, msg
    raise Refused("already_authenticated", "hello was already accepted on this connection")


async def _action_start(s: Services, who: Identity, msg: m.ActionStart) -> Outbox:
    return await joint_actions.action_start(s.actions, who, msg)


async def _action_sign(s: Services, who: Identity, msg: m.ActionSign) -> Outbox:
    return await joint_actions.action_sign(s.actions, who, msg)


async def _action_reject(s: Services, who: Identity, msg: m.ActionReject) -> Outbox:
    return await joint_actions.action_reject(s.actions, who, msg)


async def _form_present(s: Services, who: Identity, msg: m.FormPresent) -> Outbox:
    return await form_steps.form_present(s.forms, who, msg)


async def _form_sign(s: Services, who: Identity, msg: m.FormSign) -> Outbox:
    return await form_steps.form_sign(s.forms, who, msg)


async def _form_decline(s: Services, who: Identity, msg: m.FormDecline) -> Outbox:
    return await form_steps.form_decline(s.forms, who, msg)


ANY = "*"  # a step any role may ask for
STEPS: dict[tuple[str, type], Step] = {
    (Role.TERMINAL, m.CallRequest): call_request,
    (Role.TERMINAL, m.CallCancel): endings.call_cancel,
    (Role.TERMINAL, m.SessionRate): endings.rate,
    (Role.TERMINAL, m.CallHandoff): handoff.call_handoff,
    (Role.VISITOR, m.CallCancel): handoff.only_its_call(endings.call_cancel),
    (Role.VISITOR, m.SessionRate): endings.rate,
    (Role.VISITOR, m.CallHangup): handoff.only_its_call(endings.hangup),
    (Role.VISITOR, m.ChatSend): handoff.only_its_call(relay.chat),
    (Role.SPECIALIST, m.AgentStatus): connections.agent_status,
    (Role.SPECIALIST, m.CallAccept): offers.accept,
    (Role.SPECIALIST, m.CallDecline): offers.decline,
    (Role.SPECIALIST, m.CallInvite): conference.invite,
    (Role.SPECIALIST, m.CallTransfer): conference.invite,
    (Role.SPECIALIST, m.AgentWrapupDone): endings.wrapup_done,
    (Role.SPECIALIST, m.SessionWrapup): endings.wrapup_notes,
    (Role.SPECIALIST, m.ActionStart): _action_start,
    (Role.SPECIALIST, m.ActionSign): _action_sign,
    (Role.SPECIALIST, m.ActionReject): _action_reject,
    (Role.SPECIALIST, m.DocumentRequest): document_request,
    (Role.RECORDER, m.RecordSegment): recording.segment,
    (Role.RECORDER, m.RecordManifest): recording.manifest,
    (Role.SPECIALIST, m.FormPresent): _form_present,
    (ANY, m.FormSign): _form_sign,  # the step admits only the call's terminal (or its phone)
    (ANY, m.FormDecline): _form_decline,
    (ANY, m.CallHangup): endings.hangup,
    (ANY, m.ChatSend): relay.chat,
    (ANY, m.Ping): _ping,
    (ANY, m.Hello): _hello_again,
}
Forward = Callable[[Services, Identity, Any], Awaitable[tuple[str, m.Message]]]
RELAYS: dict[type, Forward] = {m.RtcDescription: relay.relay, m.RtcCandidate: relay.relay}
"""Steps whose whole effect is one message forwarded (SDP and ICE, any role): no log
event, timer or queue, so no outbox is built and committed for each of them. A visitor
relays too: `is_member` admits a phone to the one call it took over, and no other."""
_BY_ROLE: dict[str, dict[type, Step]] = {
    str(role): {kind: step for (who, kind), step in STEPS.items() if who == ANY}
    | {kind: step for (who, kind), step in STEPS.items() if who == role}
    for role in Role
}
"""Each role's steps in one table, built once: a role's own step wins over an ANY one."""
RETRIED: frozenset[type] = frozenset({m.RecordSegment, m.RecordManifest})
"""Steps run again when a backend fails (`REPORT_RETRY_S`), as relays are: a recorder
sends each report once, and a segment the catalog never heard of, or never heard closed,
is a session without its recording. Both are idempotent (`signaling.recording`)."""


async def timer_step(s: Services, kind: str, payload: dict[str, Any]) -> Outbox:
    """The step a fired timer of this kind runs."""
    if kind == timers.RING:
        return await offers.ring_timeout(s, payload["call_id"], payload["agent_id"],
                                         payload.get("offer"))
    if kind == timers.WRAPUP:
        finished = await endings.finish_wrapup(s, payload["agent_id"], "wrapup_timeout")
        return finished or _dispatch_only(s)
    if kind == timers.OVERFLOW:
        return await offers.overflow(s, payload["call_id"])
    if kind == timers.RECORDING_WAIT:
        return await recording.wait_over(s, payload["call_id"])
    if kind == timers.LOST_END:
        return await resume.lost_end(s, payload["call_id"])
    if kind == timers.GRACE:
        return await connections.grace_over(s, decode_identity(payload["identity"]),
                                            payload["epoch"])
    return _dispatch_only(s)  # UNBLOCK: the declined call may be offered again


def _dispatch_only(s: Services) -> Outbox:
    out = s.outbox()
    out.dispatch = True
    return out


class Switchboard:
    """The handler table of one node: a message, timer or connection event in, its step's
    outbox committed."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._disconnecting: set[asyncio.Task[None]] = set()

    async def handle(self, who: Identity, msg: m.Inbound) -> None:
        """Carry out one validated message; raises Refused (nothing changed) otherwise."""
        forward = RELAYS.get(type(msg))
        if forward is not None:  # every ICE candidate: the first attempt without a wrapper
            try:
                await self._forward(forward, who, msg)
            except Refused:
                raise
            except Exception as exc:
                await after_failure(exc, REPORT_RETRY_S,
                                    f"relaying {m.tag_of(msg)} from {who.principal}",
                                    lambda: self._forward(forward, who, msg))
            return
        tag = m.tag_of(msg)
        step = _BY_ROLE.get(who.role, {}).get(type(msg))
        if step is None:
            raise Refused("forbidden", f"a {who.role} cannot send {tag}")
        if type(msg) in RETRIED:
            await retrying(REPORT_RETRY_S, f"{tag} from {who.principal}",
                           lambda: self._step(step, who, msg))
        else:
            await self._step(step, who, msg)

    async def _forward(self, forward: Forward, who: Identity, msg: m.Inbound) -> None:
        to, message = await forward(self.services, who, msg)
        await self.services.bus.send(to, m.encode(message))

    async def _step(self, step: Step, who: Identity, msg: m.Inbound) -> None:
        try:
            out = await step(self.services, who, msg)
        except Exception:
            await fill(self.services)  # numbers a transaction took before it failed
            raise
        await commit(self.services, out)

    async def on_timer(self, kind: str, payload: dict[str, Any]) -> None:
        """A timer fired; perhaps again, when the node that ran it first died before the
        end (`server/cluster/scheduler.py`). Each kind starts with one atomic transition,
        which a second run finds made (so it changes nothing twice); the second run then
        still does what the first may not have reached: dispatch, or settle the calls of a
        principal whose presence is already dropped."""
        try:
            await commit(self.services, await timer_step(self.services, kind, payload))
        except Refused as exc:
            await fill(self.services)  # numbers a transaction took before the refusal
            if exc.code == FENCED:  # not done: another node runs it (scheduler.py)
                raise
            log.info("timer %s %s: %s", kind, payload, exc)
        except Exception:
            await fill(self.services)
            raise

    async def on_form_done(self, done: form_steps.FormDone) -> None:
        """The edge finished filling or rendering a form (`signaling.forms`). Tried again
        while a backend fails (a Redis restart): the form is signed or presented already,
        and the parties who do not hear it wait for it."""
        forms = self.services.forms
        if forms is None:
            return
        name = done.form.id if done.form else "?"

        async def announce() -> None:
            await commit(self.services, await forms.finished(done))

        try:
            await retrying(REPORT_RETRY_S, f"announcing form {name}", announce)
        except Exception:
            log.exception("form %s (%s) could not be announced", name, done.requested)

    async def connect(self, who: Identity, sink: Any, resume: str | None,
                      missed: str | None = None, ticket: str | None = None) -> int:
        """Attach a connection; sends `welcome`, re-syncs a resumed one (and tells it the end
        of `missed`, the call it was in, if that ended meanwhile). Returns its epoch. A
        phone's `ticket` is marked welcomed before anything else is said to it."""
        s = self.services
        if ticket is not None and resume is None:
            resume = await handoff.resume_unwelcomed(s, who, ticket)
        out, presence, resumed = await connections.open_presence(s, who, resume)
        await commit(s, out)
        s.bus.attach(who.principal, who.role, sink)
        try:
            await commit(s, connections.welcome(s, who, presence, resumed))
            if ticket is not None:
                await self._phone_welcomed(ticket)
            await s.bus.baseline(who.principal)  # before the re-sync reads where it stands
            await commit(s, await connections.where_it_stands(s, who, resumed, missed))
        except Refused:  # fenced meanwhile: the edge closes the socket; nothing stays attached
            await fill(s)  # the re-sync's number, if it took one
            s.bus.detach(who.principal, sink)
            raise
        return presence.epoch

    async def open_ticket(self, ticket: str, resume: str | None) -> Identity:
        """A phone's `hello` with a hand-off ticket (before `connect`): the first one takes
        the call over; raises Refused."""
        who, out = await handoff.open_ticket(self.services, ticket, resume)
        await commit(self.services, out)
        return who

    async def _phone_welcomed(self, ticket: str) -> None:
        """A phone's hello with a ticket was answered with `welcome`: from now on the
        ticket lets only that phone in (with its resume token). Not marked (the database
        failing), a phone with the ticket may still take the call over: logged."""
        try:
            await handoff.welcomed(self.services, ticket)
        except Exception:
            log.exception("marking a hand-off ticket welcomed failed")

    async def credentials_expiring(self, who: Identity) -> None:
        """The connection's TURN credentials expire soon: fresh ones (`ice.servers`)."""
        await commit(self.services, connections.fresh_ice_servers(self.services, who))

    async def answer_again(self, call_id: str, agent_id: str, at: float) -> None:
        """A dead node's answer, logged and told if it never was, told again if it was
        logged recently (`offers.answer_again`)."""
        try:
            await commit(self.services, await offers.answer_again(self.services, call_id,
                                                                  agent_id, at))
        except Exception:
            await fill(self.services)
            raise

    async def ends_again(self, call_ids: list[str]) -> None:
        """A dead node's recent ends, logged and told if they never were
        (`resume.ends_again`)."""
        await commit(self.services, await resume.ends_again(self.services, call_ids))

    async def handoffs_again(self, handed: list[tuple[str, float]]) -> None:
        """A dead node's recent hand-overs to phones, logged if they never were
        (`handoff.handoffs_again`)."""
        await commit(self.services, await handoff.handoffs_again(self.services, handed))

    async def recorder_joined(self, who: Identity, capacity: int | None) -> None:
        """A recorder's hello (after `connect`): sessions waiting for one go to it."""
        await commit(self.services, await recording.recorder_joined(self.services, who,
                                                                     capacity))

    async def disconnect(self, who: Identity, epoch: int, sink: Any) -> None:
        """The socket closed: keep the principal's place for the resume grace.

        Runs to the end even if the caller is cancelled (aiohttp may cancel the closing
        socket's handler): stopped halfway, a shared presence would stay `connected` and a
        lost recorder's sessions would never be handed on."""
        self.services.bus.detach(who.principal, sink)
        task = asyncio.ensure_future(self._disconnected(who, epoch))
        self._disconnecting.add(task)
        task.add_done_callback(self._disconnecting.discard)
        await asyncio.shield(task)

    async def settle(self) -> None:
        """Wait for disconnects still running (shutdown: before the session log closes)."""
        while self._disconnecting:
            await asyncio.gather(*list(self._disconnecting), return_exceptions=True)

    async def _disconnected(self, who: Identity, epoch: int) -> None:
        """Retried with backoff while a backend fails (Redis restarting, its pool drained,
        the database's connections cut): a disconnect given up leaves the principal
        `connected` with no grace timer, so a caller's call would stay open for ever. The
        step is idempotent for one epoch (`connections.disconnected`)."""
        try:
            await retrying(DISCONNECT_RETRY_S, f"disconnecting {who.principal}",
                           lambda: self._commit_disconnect(who, epoch))
        except Refused as exc:  # fenced: the node that took this one over settles it
            log.info("disconnecting %s refused: %s", who.principal, exc.message)
        except Exception:
            log.exception("disconnecting %s failed; given up after %d attempts",
                          who.principal, len(DISCONNECT_RETRY_S) + 1)

    async def _commit_disconnect(self, who: Identity, epoch: int) -> None:
        await commit(self.services, await connections.disconnected(
            self.services, who, epoch, deliver=lambda out: commit(self.services, out)))
