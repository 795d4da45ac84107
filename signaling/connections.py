"""Connections coming and going: `welcome`, the resume grace, and a principal gone for good.

A principal's presence survives a lost socket for `resume_grace_s`: reconnecting with
the resume token within it resumes (`signaling.resume`); after it the principal is
released (a caller's calls end, a specialist's offer or call goes on without them).
"""

from __future__ import annotations

from . import events as ev
from . import messages as m
from . import recording, timers
from .backend import Presence
from .endings import let_go, requeue
from .identity import Identity, Role, encode_identity
from .model import Agent, AgentState, QueueConfig
from .offers import withdraw
from .outbox import Outbox
from .parties import calls_of_caller
from .resume import resume
from .retry import again
from .services import Services


async def open_presence(s: Services, who: Identity, resume_token: str | None
                        ) -> tuple[Outbox, Presence, bool]:
    """A connection said hello: its presence, resumed or new (an older one it replaces is
    released first, while that connection still hears of it). Before the sink is attached.
    Whether there was one is the connect's answer, not a read before it: a round trip less
    for every hello of a reconnect storm (bench.takeover --resume)."""
    out = s.outbox()
    presence, resumed = await s.presences.connect(who.principal, resume_token)
    if presence.replaced and not resumed:
        await release(s, out, who, "replaced")
    if who.role == Role.SPECIALIST:  # routable before `welcome`: a client may act on it at once
        await s.router.agent_join(Agent(id=who.id, name=who.name, skills=dict(who.skills),
                                        department=who.department), s.clock())
        await s.router.set_connected(who.id, True)
    return out, presence, resumed


def welcome(s: Services, who: Identity, presence: Presence, resumed: bool) -> Outbox:
    """`welcome`, first thing on the attached connection (no await before it: an older
    connection it replaces is being closed meanwhile, and the client reads this first)."""
    out = s.outbox()
    queues = [m.QueueRef(id=q.id, name=q.name) for q in _queues_for(s, who)]
    out.send(who.principal, m.Welcome(
        role=str(who.role), id=who.id, participant_id=who.principal, name=who.name,
        resume=presence.resume, resumed=resumed, ice_servers=s.ice_servers(who),
        queues=queues, site=who.site))
    out.cancel_timer(timers.grace_key(who.principal))
    return out


def fresh_ice_servers(s: Services, who: Identity) -> Outbox:
    """`ice.servers` for a connection that outlives its TURN credentials (pushed a while
    before they expire, `server.turn`): its next ICE restart can relay again."""
    out = s.outbox()
    out.send(who.principal, m.IceServers(ice_servers=s.ice_servers(who)))
    return out


async def where_it_stands(s: Services, who: Identity, resumed: bool,
                          missed: str | None = None) -> Outbox:
    """After `welcome`: a specialist's calls dispatched, its state re-sent, the queues;
    the end of `missed` if that call ended while the socket was away."""
    out = s.outbox()
    if who.role == Role.SPECIALIST:
        out.changed_all()
        out.dispatch = True  # back and still available: calls may be waiting
    await resume(s, out, who, resumed, missed)
    out.send(who.principal, await s.status.status_message())
    return out


def _queues_for(s: Services, who: Identity) -> list[QueueConfig]:
    if who.role == Role.SPECIALIST:
        return [q for q in s.queues.values() if q.id in who.skills]
    return list(s.queues.values())


async def disconnected(s: Services, who: Identity, epoch: int,
                       deliver: recording.Deliver | None = None) -> Outbox:
    """The socket closed: the principal keeps its place for the resume grace (a recorder
    has none: its media is gone with it, its sessions are handed on). Idempotent for one
    epoch: the switchboard runs it again when a backend failed halfway. A recorder's
    sessions are handed on one by one through `deliver` (`recording.recorder_left`)."""
    out = s.outbox()
    if not await s.presences.disconnect(who.principal, epoch):
        if who.role == Role.RECORDER and await s.presences.get(who.principal) is None:
            return await recording.recorder_left(s, who, deliver)  # a retry after the drop
        return out
    if who.role == Role.RECORDER:
        await s.presences.drop(who.principal, epoch)
        return await recording.recorder_left(s, who, deliver)
    if who.role == Role.SPECIALIST:
        await s.router.set_connected(who.id, False)
        agent = await s.router.get_agent(who.id)
        if agent is not None and agent.state == AgentState.RINGING and agent.call_id:
            await withdraw(s, out, agent.call_id, who.id, "agent_lost")
            out.dispatch = True
    out.set_timer(timers.grace(who.principal, encode_identity(who), epoch, s.resume_grace_s))
    return out


async def grace_over(s: Services, who: Identity, epoch: int) -> Outbox:
    """The resume grace ran out (perhaps a second run, after the first one's node died)."""
    out = s.outbox()
    if await s.presences.drop(who.principal, epoch) or (
        await s.presences.get(who.principal) is None
    ):
        await release(s, out, who, "lost")
    return out


async def release(s: Services, out: Outbox, who: Identity, reason: str) -> None:
    """The principal is gone for good (grace over, or replaced): settle its calls."""
    if who.role in (Role.TERMINAL, Role.VISITOR):
        for call in await calls_of_caller(s, who):
            await let_go(s, out, call, "terminal_lost", "terminal_lost", who.principal)
        return
    if who.role != Role.SPECIALIST:
        return
    agent = await s.router.get_agent(who.id)
    if agent is None:
        return
    old = agent.state.value  # before the steps below (a memory router's agent is live)
    if agent.call_id and agent.state == AgentState.RINGING:
        await withdraw(s, out, agent.call_id, who.id, "agent_lost")
    elif agent.call_id and agent.state == AgentState.IN_CALL:
        await requeue(s, out, agent.call_id, who.id)
    out.cancel_timer(timers.wrapup_key(who.id))
    await s.router.agent_leave(who.id)
    out.event(ev.AgentStatus(agent_id=who.id, old=old, new="offline",
                             reason=reason), actor=who.principal)
    out.dispatch = True
    out.changed_all()


async def agent_status(s: Services, who: Identity, msg: m.AgentStatus) -> Outbox:
    """`agent.status`: a specialist goes available or away (or ends wrap-up early). Tried
    again as one attempt (`retry.again`): a lost reply is answered the same."""
    return await again(f"{who.principal} going {msg.status}",
                       lambda: _agent_status(s, who, AgentState(msg.status)))


async def _agent_status(s: Services, who: Identity, status: AgentState) -> Outbox:
    out = s.outbox()
    old = await s.router.set_status(who.id, status, s.clock())
    if old is None:
        return out
    if old == AgentState.WRAP_UP:
        out.cancel_timer(timers.wrapup_key(who.id))
    out.agent_status(who.id, status, "requested")
    out.dispatch = status == AgentState.AVAILABLE
    out.changed_all()
    return out
