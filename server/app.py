"""The application factory: `create_app(settings) -> web.Application`.

Every resource with a lifetime is one `cleanup_ctx` entry: the database, the
routing backends and switchboard, the background watchers, the sockets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import socket
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSCloseCode, web

from recorder.heap import HeapTrimmer
from server import keys
from server.appointments import APPOINTMENTS, AppointmentDesk, start_sweeper
from server.auth import AuthService
from server.cluster.backends import ClusterBackends
from server.cluster.keys import DRAIN_CLOSE_CODE
from server.config import Settings
from server.conncaps import CAPS, AddressCaps
from server.edge import forwarded_middleware
from server.forms.service import FORMS, form_services
from server.health import READINESS, Readiness
from server.http.api import setup_api
from server.http.appointments import setup_appointments
from server.http.documents import setup_documents
from server.http.forms import setup_forms
from server.http.handoff import setup_handoff
from server.http.headers import setup_headers
from server.http.joint import setup_joint
from server.http.materials import setup_materials
from server.http.openapi import setup_openapi
from server.http.params import checked_queries
from server.http.recordings import setup_recordings
from server.http.staff import setup_staff
from server.joint import JOINT, JointServices, MatterDesk, load_joint
from server.materials import MATERIALS, load_materials
from server.metrics import METRICS, Metrics, watch_loop_lag
from server.recording.embedded import RECORDING, RecordingServices, setup_recording
from server.revocation import end_lapsed
from server.storage.db import open_database
from server.turn import TURN, TurnCredentials
from server.turnserver import local_turn_ctx
from server.ws import IDLE, REVOKED, late_hello, websocket
from signaling.appointments import Appointments
from signaling.backend import MessageBus, Presences, Router, Scheduler
from signaling.forms import FormDesk, FormDone
from signaling.hours import OpeningHours
from signaling.joint_actions import JointWork
from signaling.link import ClusterLink, SingleNode
from signaling.memory import memory_backends
from signaling.queue_status import QueueStatus
from signaling.recorders import MemoryRecorderPool, RecorderPool
from signaling.services import Services
from signaling.switchboard import Switchboard

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 5.0  # how soon a terminal revoked by the CLI (another process) is cut off
HEAP_TRIM_S = 60.0  # free C heap returned to the system at most this often (issue 16)
SEEN_EVERY = 6  # last_seen_at is written every 6th round (30 s): fresh enough for "last seen"


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[keys.SETTINGS] = settings
    app[keys.SOCKETS] = weakref.WeakSet()
    app[keys.CONNECTIONS] = weakref.WeakSet()
    app[keys.HEALTH] = {"status": "ok"}
    app[CAPS] = AddressCaps(settings.limits)
    app[TURN] = TurnCredentials(settings.turn, settings.ice)
    app.middlewares.append(forwarded_middleware(settings.server.trusted_proxies))
    app.middlewares.append(checked_queries)
    app.cleanup_ctx.append(local_turn_ctx)
    app[keys.NODE_ID] = settings.server.node_id or socket.gethostname()
    app[METRICS] = Metrics(slow_step_s=settings.server.slow_step_ms / 1000)
    app[MATERIALS] = load_materials(settings)
    app[READINESS] = Readiness(recording=settings.recording.enabled,
                                    redis=settings.routing.backend == "redis")
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_switchboard)
    app.cleanup_ctx.append(_terminal_watch)
    app.cleanup_ctx.append(_idle_sweeper)
    app.cleanup_ctx.append(_loop_lag)
    app.cleanup_ctx.append(_purger)
    app.on_shutdown.append(_close_sockets)
    setup_headers(app)
    app.router.add_get("/ws", websocket)
    setup_api(app)
    setup_appointments(app)
    setup_openapi(app)
    setup_joint(app)
    setup_forms(app)
    setup_recordings(app)
    setup_materials(app)
    setup_documents(app)
    setup_staff(app)
    setup_recording(app)
    setup_handoff(app)
    try:
        from server.http.pages import setup_pages
    except ImportError:
        log.warning("web pages not available")
    else:
        setup_pages(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    async with open_database(app[keys.SETTINGS].storage.url) as db:
        app[keys.DB] = db
        db.append_observer = app[METRICS].append_seconds.observe
        db.groups_in_flight = app[keys.SETTINGS].storage.log_groups_in_flight
        app[keys.AUTH] = AuthService(db, app[keys.SETTINGS].auth)
        yield


async def _switchboard(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    db = app[keys.DB]
    node_id = app[keys.NODE_ID]
    queues = {q.id: q for q in settings.queues}
    types, calendar = load_joint(settings.joint, settings.server.timezone,
                                 departments=[d.id for d in settings.departments])
    hours = OpeningHours(calendar, {q.id: q.hours for q in settings.queues})
    cluster: ClusterBackends | None = None
    node_ids: set[str] | None = None
    if settings.routing.backend == "redis":
        cluster = ClusterBackends(settings, node_id, app[keys.HEALTH], hours,
                                  sockets=functools.partial(len, app[keys.SOCKETS]),
                                  rebalance_counters=app[METRICS])
        await cluster.start()
        app[METRICS].redis_ping = cluster.redis.ping
        node_ids = await cluster.interrupted_node_ids()
        router: Router = cluster.router
        bus: MessageBus = cluster.bus
        scheduler: Scheduler = cluster.scheduler
        presences: Presences = cluster.presences
        link: ClusterLink = cluster.link
        status = cluster.status
        pool: RecorderPool = cluster.recorders
    else:
        local = memory_backends(settings.queues, functools.partial(_timer_fired, app))
        router, bus, scheduler, presences = (local.router, local.bus, local.scheduler,
                                             local.presences)
        link = SingleNode(router, bus)
        status = QueueStatus(queues, router, bus, time.time, link, hours)
        pool = MemoryRecorderPool(local.router)
    closed = await db.close_interrupted(dt.datetime.now(dt.UTC), node_ids=node_ids)
    if cluster is not None and node_ids == set():  # the routing state survived: only the
        # sessions this node logged whose call is not live: it never reached routing, or its
        # end did not reach the log (closed as routing kept it), the node died between
        closed += await db.close_interrupted(dt.datetime.now(dt.UTC), node_ids={node_id},
                                             alive=cluster.router.knows,
                                             endings=cluster.router.ending)
    if closed:
        log.warning("closed %d session(s) left open by a previous run", closed)
    app[RECORDING] = RecordingServices(settings, db, node_id, pool)
    actions = JointWork(router=router, bus=bus, clock=time.time, types=types, repository=db)
    app[JOINT] = JointServices(actions, MatterDesk(db, calendar))
    desk = AppointmentDesk(settings.appointments, queues, hours, db,
                           lambda: dt.datetime.now(dt.UTC))
    app[APPOINTMENTS] = desk
    form_desk = None
    if settings.forms.enabled:
        app[FORMS] = form_services(settings, db, types, functools.partial(_form_done, app))
        form_desk = FormDesk(router=router, clock=time.time, press=app[FORMS].press,
                             templates=app[FORMS].templates)
    board = Switchboard(Services(
        queues=queues,
        router=router,
        bus=bus,
        scheduler=scheduler,
        presences=presences,
        session_log=db,
        clock=time.time,
        link=link,
        status=status,
        resume_grace_s=settings.server.resume_grace_s,
        ice_servers=app[TURN],
        node_id=node_id,
        recording=app[RECORDING].setup,
        actions=actions,
        appointments=Appointments(book=db, early_s=settings.appointments.early_s,
                                  late_s=settings.appointments.late_s),
        handoffs=db,
        forms=form_desk,
    ))
    if cluster is not None:
        cluster.bind(board)
    app[keys.BUS] = bus
    app[keys.BOARD] = board
    sweeper = start_sweeper(desk, status)
    yield
    sweeper.cancel()
    await asyncio.gather(sweeper, return_exceptions=True)
    if FORMS in app:
        await app[FORMS].press.settle()
        await asyncio.to_thread(app[FORMS].pool.close)
    await status.close()
    if cluster is not None:
        await cluster.close()
    else:
        await scheduler.close()


async def _timer_fired(app: web.Application, kind: str, payload: dict[str, Any]) -> None:
    """The memory scheduler's handler: the switchboard built on it (steps set timers, so
    the board exists before any fires)."""
    await app[keys.BOARD].on_timer(kind, payload)


async def _form_done(app: web.Application, done: FormDone) -> None:
    """The form press's handler: a form filled or signed off the loop, to the switchboard."""
    await app[keys.BOARD].on_form_done(done)


async def _idle_sweeper(app: web.Application) -> AsyncIterator[None]:
    """Drop connections silent for `idle_timeout_s` (one task, not a timer per frame)."""
    task = asyncio.get_running_loop().create_task(_sweep_idle(app))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _loop_lag(app: web.Application) -> AsyncIterator[None]:
    """The event loop's lag, sampled for `/metrics` (`vwin_event_loop_lag_seconds`)."""
    observe = app[METRICS].loop_lag_seconds.observe
    task = asyncio.get_running_loop().create_task(watch_loop_lag(observe))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _sweep_idle(app: web.Application) -> None:
    """Also closes sockets that said no `hello` within `hello_timeout_s` (late by at most a
    quarter of it), and returns free C heap to the system now and then (recorder.heap)."""
    settings = app[keys.SETTINGS].server
    idle_s, hello_s = settings.idle_timeout_s, settings.hello_timeout_s
    connections = app[keys.CONNECTIONS]
    heap = HeapTrimmer(HEAP_TRIM_S)
    while True:
        await asyncio.sleep(min(5.0, idle_s / 4, hello_s / 4))
        heap.trim()
        now = time.monotonic()
        cutoff, hello_cutoff = now - idle_s, now - hello_s
        for conn in list(connections):
            if conn.awaiting_hello:
                if conn.last_seen < hello_cutoff:
                    late_hello(conn)
            elif conn.last_seen < cutoff:
                conn.close(IDLE, "idle")


async def _purger(app: web.Application) -> AsyncIterator[None]:
    """Expired tokens, tickets and throttle records deleted every `auth.purge_interval_s`."""
    task = asyncio.get_running_loop().create_task(_purge(app))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _purge(app: web.Application) -> None:
    while True:
        await asyncio.sleep(app[keys.SETTINGS].auth.purge_interval_s)
        try:
            await app[keys.AUTH].purge()
        except Exception:
            log.exception("purging expired credentials failed")


async def _terminal_watch(app: web.Application) -> AsyncIterator[None]:
    """Disconnect revoked terminals (revoked by the CLI in another process) and specialists
    whose logins lapsed (expired, disabled elsewhere), and note who is seen."""
    task = asyncio.get_running_loop().create_task(_watch_terminals(app))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _watch_terminals(app: web.Application) -> None:
    db = app[keys.DB]
    bus = app[keys.BUS]
    rounds = 0
    while True:
        await asyncio.sleep(WATCH_INTERVAL_S)
        rounds += 1
        try:
            await end_lapsed(app, dt.datetime.now(dt.UTC))
            ids = [p.split(":", 1)[1] for p in bus.connected() if p.startswith("terminal:")]
            if not ids:
                continue
            for terminal_id in await db.revoked_among(ids):
                await bus.kick(f"terminal:{terminal_id}", REVOKED, "revoked")
            if rounds % SEEN_EVERY == 0:
                await db.touch_terminals(ids, dt.datetime.now(dt.UTC))
        except Exception:
            log.exception("terminal watch failed")


async def _close_sockets(app: web.Application) -> None:
    """Shutdown; in a cluster, 1012 (service restart) tells clients to reconnect elsewhere."""
    clustered = app[keys.SETTINGS].routing.backend == "redis"
    code = DRAIN_CLOSE_CODE if clustered else int(WSCloseCode.GOING_AWAY)
    message = b"server restart" if clustered else b"server shutdown"
    # All at once: each close waits for the client's answer, and one after the other
    # 10,000 kiosks outlasted a service manager's stop timeout (bench/reconnect.py).
    open_sockets = app[keys.SOCKETS]
    sockets = list(open_sockets)
    await asyncio.gather(*(ws.close(code=code, message=message) for ws in sockets),
                         return_exceptions=True)
