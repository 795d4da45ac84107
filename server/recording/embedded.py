"""Recording inside `vwin serve`: the recorder pool, the local recorder process, retention.

With `[recording] enabled`, the server keeps a pool of live recorders (in memory, or in
Redis shared by every node with `[routing] backend = "redis"`) and, unless
`local_recorder = false`, starts one `vwin recorder` child beside itself (the embedded
set-up) and restarts it if it dies. The child authenticates with a token made for this
run and held only in memory; other recorders use credentials from `vwin recorder add`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from server import keys
from server.auth import token_hash
from server.config import Settings
from server.storage.db import Database
from server.storage.engine import utcnow
from signaling.identity import Identity, Role
from signaling.recorders import RecorderPool, RecordingSetup

from .catalog import FileCatalog, retention_loop

log = logging.getLogger(__name__)

RECORDER_TOKEN_PREFIX = "vwr_"
TOKEN_ENV = "VWIN_RECORDING_TOKEN"
"""`[recording] token` from the environment: the local recorder's token never shows in `ps`."""
RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
STOP_GRACE_S = 10.0
# The embedded recorder is told its parent's pid (not a VWIN_ variable: those are settings)
# and exits when it is orphaned, so a killed `vwin serve` leaves no recorder behind.
PARENT_ENV = "VIRTUAL_WINDOW_PARENT_PID"
PARENT_POLL_S = 1.0
"""A stopping recorder closes its files and reports them; then it is killed."""


def new_recorder_token() -> str:
    return RECORDER_TOKEN_PREFIX + secrets.token_urlsafe(32)


class LocalRecorder:
    """Supervises the embedded `vwin recorder` child process."""

    def __init__(self, url: str, directory: Path, capacity: int, token: str,
                 log_env: dict[str, str] | None = None) -> None:
        self.url = url
        self.log_env = log_env or {}  # the child logs as `[log]` of its parent says
        self.directory = directory
        self.capacity = capacity
        self.token = token
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        delay = RESTART_MIN_S
        while not self._stopping:
            env = {**os.environ, **self.log_env, TOKEN_ENV: self.token,
                   PARENT_ENV: str(os.getpid()),
                   "VWIN_RECORDING_DIR": str(self.directory.resolve())}
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "server.cli", "recorder", "--url", self.url,
                "--capacity", str(self.capacity), env=env, start_new_session=True)
            self.starts += 1
            log.info("local recorder started (pid %d)", self.process.pid)
            code = await self.process.wait()
            if self._stopping:
                return
            log.error("local recorder exited with %s; restarting in %.0f s", code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_S)

    async def stop(self) -> None:
        """Ask the child to finish its files (SIGTERM), kill it if it takes too long."""
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class RecordingServices:
    """What recording adds to the app: the switchboard's setup and the background parts."""

    def __init__(self, settings: Settings, db: Database, node_id: str,
                 pool: RecorderPool) -> None:
        config = settings.recording
        self.directory = Path(config.dir)
        self.catalog: FileCatalog | None = None
        self.setup: RecordingSetup | None = None
        self.local: LocalRecorder | None = None
        self.local_token: str | None = None
        self.local_name = f"local-{node_id}"
        if config.enabled:
            self.catalog = FileCatalog(db, self.directory)
            self.setup = RecordingSetup(pool=pool, catalog=self.catalog, wait_s=config.wait_s,
                                        required=config.required)
            if config.local_recorder:
                self.local_token = new_recorder_token()

    async def identity(self, db: Database, token: str) -> Identity | None:
        """The recorder a `hello` token names: the local child's or a stored credential."""
        if self.local_token is not None and hmac.compare_digest(token, self.local_token):
            return Identity(role=Role.RECORDER, id=self.local_name, name=self.local_name)
        name = await db.recorder_by_token_hash(token_hash(token))
        return None if name is None else Identity(role=Role.RECORDER, id=name, name=name)


RECORDING = web.AppKey("recording", RecordingServices)


def local_url(settings: Settings) -> str:
    host = settings.server.host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    scheme = "wss" if settings.server.tls_cert else "ws"
    return f"{scheme}://{host}:{settings.server.port}/ws"


def setup_recording(app: web.Application) -> None:
    """The background parts and shutdown order of recording (routes: `server.http.recordings`)."""
    app.cleanup_ctx.append(recording_ctx)
    app.on_shutdown.insert(0, _stop_local)  # before the sockets close: it reports its files


async def _stop_local(app: web.Application) -> None:
    services = app.get(RECORDING)
    if services is not None and services.local is not None:
        await services.local.stop()


async def recording_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx entry: the local recorder and the retention job; after the switchboard."""
    services = app[RECORDING]
    settings = app[keys.SETTINGS]
    tasks: list[asyncio.Task[None]] = []
    if services.setup is not None:
        tasks.append(asyncio.get_running_loop().create_task(retention_loop(
            app[keys.DB], services.directory, settings.recording.retention_days,
            settings.recording.retention_interval_s, utcnow)))
        if services.local_token is not None:
            log_env: dict[str, str] = {"VWIN_LOG_LEVEL": settings.log.level,
                       "VWIN_LOG_FORMAT": settings.log.format}
            services.local = LocalRecorder(local_url(settings), services.directory,
                                           settings.recording.capacity, services.local_token,
                                           log_env)
            services.local.start()
    yield
    if services.local is not None:
        await services.local.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await app[keys.BOARD].settle()  # handovers log to the catalog: before it closes
    if services.catalog is not None:
        with contextlib.suppress(Exception):
            await services.catalog.close()
