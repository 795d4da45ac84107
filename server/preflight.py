"""What `vwin serve` checks before it prints its URL: every failure is one line and exit 2.

The data files, the recording directory, the database, Redis and the listening
socket are tried first; an operator then reads which setting is wrong instead
of a traceback from inside the event loop.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import tempfile
from pathlib import Path

import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from server.cluster import versions
from server.config import ConfigError, Settings
from server.dblock import DatabaseLock, DatabaseLocked
from server.edge import tls_context
from server.joint import load_joint
from server.materials import load_materials
from server.turnserver import MISSING_TURNSERVER, find_turnserver


class StartupError(Exception):
    """The server cannot start; `str()` is the one line to print."""


def redacted(url: str) -> str:
    """A database or Redis URL with its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # too broken to parse: show the scheme only
        return url.split(":", 1)[0] + ":..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_files(settings: Settings) -> None:
    try:
        load_joint(settings.joint, settings.server.timezone)
    except ConfigError as exc:
        raise StartupError(f"joint actions or calendar: {exc}") from None
    try:
        load_materials(settings)
    except ConfigError as exc:
        raise StartupError(f"materials: {exc}") from None
    if settings.turn.local and find_turnserver() is None:
        raise StartupError(MISSING_TURNSERVER)
    if settings.recording.enabled:
        folder = Path(settings.recording.dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise StartupError(f"recording.dir {folder} is not writable: "
                               f"{exc.strerror or exc}") from None


async def check_redis(settings: Settings) -> None:
    if settings.routing.backend != "redis":
        return
    client = aioredis.Redis.from_url(settings.routing.redis_url, socket_connect_timeout=5)
    try:
        await asyncio.wait_for(client.ping(), 10)
        levels = await versions.live_levels(client, settings.routing.key_prefix)
    except Exception as exc:  # any failure to reach Redis is one line
        raise StartupError(f"redis at {redacted(settings.routing.redis_url)} is unreachable: "
                           f"{_first_line(exc)}") from None
    finally:
        await client.aclose()
    mixed = versions.others(levels, settings.server.node_id or socket.gethostname())
    if mixed:  # their messages and ours would be lost between us (server/cluster/versions.py)
        raise StartupError(
            f"another version runs on this cluster: {versions.describe(mixed)}, this one "
            f"speaks protocol {versions.PROTOCOL}; messages between them would be lost: stop "
            f"every node and start them on one version (docs/cluster.md)")


def database_error(settings: Settings, exc: BaseException) -> StartupError:
    return StartupError(f"database {redacted(settings.storage.url)}: {_first_line(exc)}")


LISTEN_BACKLOG = 4096  # Linux caps it at net.core.somaxconn (4096 by default)


def listen(settings: Settings) -> socket.socket:
    """The listening socket, bound now so a busy port is reported before the URL."""
    host, port = settings.server.host, settings.server.port
    try:
        # After a restart every kiosk and console reconnects at once: a short accept queue
        # drops their SYNs, and the kernel's SYN retries (1, 3, 7, 15, 31 s...) then keep
        # them out far longer than their own backoff would (bench/reconnect.py).
        return socket.create_server((host, port), reuse_port=False, backlog=LISTEN_BACKLOG)
    except OSError as exc:
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def tls(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context, or a StartupError naming the unreadable certificate or key."""
    try:
        return tls_context(settings.server)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"server.tls_cert/tls_key {settings.server.tls_cert}: "
                           f"{getattr(exc, 'strerror', None) or exc}") from None


async def lock_database(settings: Settings, lock: DatabaseLock) -> None:
    """One `vwin serve` per database when routing is in memory (server/dblock.py)."""
    try:
        await lock.acquire()
    except DatabaseLocked as exc:
        raise StartupError(str(exc)) from None
    except Exception as exc:  # unreachable: one line
        raise database_error(settings, exc) from None
