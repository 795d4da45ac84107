"""`vwin doctor`: checks what an operator gets wrong, one line per check, exit 1 if one fails.

Each check returns `(status, detail)`: `ok`, `FAIL` or `skip` (not configured). Nothing
is changed: a missing SQLite file is reported, not created.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from server.config import Settings
from server.dblock import sqlite_path

OK: Final = "ok"
FAIL: Final = "FAIL"
SKIP: Final = "skip"
TIMEOUT_S: Final = 5.0
MB_PER_PARTICIPANT_HOUR: Final = 300.0
"""Recording size: the recording benchmark's 640x480 VP8 at ~600 kbit/s plus Opus."""
MIN_RECORDING_HOURS: Final = 8.0  # less than one working day of one two-party session: fail
CERT_WARN_DAYS: Final = 14

Result = tuple[str, str]
Check = Callable[[Settings], Awaitable[Result]]


async def check_database(settings: Settings) -> Result:
    from server.storage.migrate import current_revision

    url = settings.storage.url
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return FAIL, f"no database at {path} (vwin serve creates it; or vwin db upgrade)"
    try:
        revision = await asyncio.wait_for(current_revision(url), TIMEOUT_S)
    except Exception as exc:
        return FAIL, f"{_where(url)} does not answer: {_short(exc)}"
    if revision is None:
        return FAIL, f"{_where(url)} answers but has no schema: run vwin db upgrade"
    return OK, f"{_where(url)} answers, schema {revision}"


async def check_redis(settings: Settings) -> Result:
    if settings.routing.backend != "redis":
        return SKIP, "in-memory routing"
    from redis.asyncio import Redis

    from server.cluster import versions

    client = Redis.from_url(settings.routing.redis_url, socket_connect_timeout=TIMEOUT_S)
    try:
        await asyncio.wait_for(client.ping(), TIMEOUT_S)
        levels = await asyncio.wait_for(
            versions.live_levels(client, settings.routing.key_prefix), TIMEOUT_S)
    except Exception as exc:
        return FAIL, f"{_where(settings.routing.redis_url)} does not answer: {_short(exc)}"
    finally:
        await client.aclose()
    where = _where(settings.routing.redis_url)
    mixed = {i: v for i, v in levels.items() if v[1] != versions.PROTOCOL}
    if mixed:  # messages between nodes of different protocols are lost
        return FAIL, (f"{where} answers, but nodes of another version run: "
                      f"{versions.describe(mixed)} (this version speaks protocol "
                      f"{versions.PROTOCOL}): run every node on one version")
    return OK, f"{where} answers, {len(levels)} node(s) alive at protocol {versions.PROTOCOL}"


async def check_recording_dir(settings: Settings) -> Result:
    if not settings.recording.enabled:
        return SKIP, "recording disabled"
    directory = Path(settings.recording.dir)
    existing = next((p for p in (directory, *directory.resolve().parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return FAIL, f"{directory}: no directory to create it in"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".vwin-doctor-"):
            pass
    except OSError as exc:
        return FAIL, f"{existing} is not writable by this user: {exc.strerror}"
    free = shutil.disk_usage(existing).free
    hours = free / 1e6 / (2 * MB_PER_PARTICIPANT_HOUR)
    detail = (f"{directory} writable, {free / 1e9:.1f} GB free = {hours:,.0f} h of two-party "
              f"sessions (at {MB_PER_PARTICIPANT_HOUR:.0f} MB per participant-hour)")
    return (OK if hours >= MIN_RECORDING_HOURS else FAIL), detail


async def check_tls(settings: Settings) -> Result:
    cert = settings.server.tls_cert
    if not cert:
        return SKIP, "no [server] tls_cert (plain HTTP, or TLS at a reverse proxy)"
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    except (OSError, ValueError) as exc:
        return FAIL, f"{cert}: cannot read a PEM certificate: {_short(exc)}"
    now = dt.datetime.now(dt.UTC)
    until = certificate.not_valid_after_utc
    if certificate.not_valid_before_utc > now:
        return FAIL, f"{cert}: not valid before {certificate.not_valid_before_utc:%Y-%m-%d}"
    if until <= now:
        return FAIL, f"{cert}: expired {until:%Y-%m-%d %H:%M} UTC"
    days = (until - now).days
    if days < CERT_WARN_DAYS:
        return FAIL, f"{cert}: expires in {days} day(s) ({until:%Y-%m-%d}); renew it"
    return OK, f"{cert}: {certificate.subject.rfc4514_string()}, valid until {until:%Y-%m-%d}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def check_origins(settings: Settings) -> Result:
    origins = settings.server.allowed_origins
    bad = [o for o in origins if o != "*" and not _is_origin(o)]
    if bad:
        return FAIL, f"[server] allowed_origins: not an origin (scheme://host[:port]): {bad}"
    plain = [o for o in origins
             if o.startswith("http://") and not _loopback(urlsplit(o).hostname or "")]
    if plain:
        return FAIL, f"browsers give no camera to {plain}: list the https:// origin"
    if _loopback(settings.server.host):
        return OK, f"serving on {settings.server.host} only; allowed_origins {origins or '[]'}"
    if not origins:
        return FAIL, (f"serving on {settings.server.host or 'all addresses'} but [server] "
                      "allowed_origins is empty: list the public origin, e.g. "
                      "\"https://vwin.example.gov.cn\"")
    return OK, f"public origin(s) {', '.join(origins)}"


def _is_origin(text: str) -> bool:
    parts = urlsplit(text)
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.path
            and not parts.query and not parts.fragment)


async def check_turn(settings: Settings) -> Result:
    from server.turn import check_allocation

    turn = settings.turn
    if not turn.secret or not turn.urls:
        return SKIP, "no [turn] secret and urls (kiosks behind strict NAT cannot relay)"
    failures, relays = [], []
    for url in turn.urls:
        try:
            relays.append(f"{url} -> relay {await check_allocation(turn, url, TIMEOUT_S)}")
        except ConnectionError as exc:
            failures.append(str(exc))
    if failures:
        return FAIL, "; ".join(failures)
    return OK, "; ".join(relays)


async def check_recorder(settings: Settings) -> Result:
    if not settings.recording.enabled:
        return SKIP, "recording disabled"
    if settings.recording.local_recorder:
        try:
            import av

            for codec in ("libvpx", "libopus"):
                av.codec.Codec(codec, "r")  # the recorder needs the names, not the decoders
            av.format.ContainerFormat("webm")
        except Exception as exc:
            return FAIL, f"the local recorder cannot write WebM (VP8/Opus): {_short(exc)}"
        return OK, "local recorder (started by vwin serve): PyAV writes WebM with VP8 and Opus"
    from server.storage.db import Database

    path = sqlite_path(settings.storage.url)
    if path is not None and not path.exists():
        return FAIL, "no database, so no recorder credentials"
    try:
        db = await Database.connect(settings.storage.url)
    except Exception as exc:
        return FAIL, f"cannot read recorder credentials: {_short(exc)}"
    try:
        names = await db.recorder_names()
    finally:
        await db.close()
    if not names:
        return FAIL, ("local_recorder = false and no recorder credential: run vwin recorder add "
                      "NAME and start vwin recorder with its token")
    return OK, f"recorder credential(s): {', '.join(names)} (they must be running)"


CHECKS: Final[tuple[tuple[str, Check], ...]] = (
    ("database", check_database), ("redis", check_redis),
    ("recording-dir", check_recording_dir), ("tls", check_tls), ("origins", check_origins),
    ("turn", check_turn), ("recorder", check_recorder),
)


async def run(settings: Settings, out: Callable[[str], None] = print) -> int:
    """Every check, one line each; 1 if any failed."""
    failed = False
    for name, check in CHECKS:
        try:
            status, detail = await check(settings)
        except Exception as exc:  # a check that breaks is a failed check, with its reason
            status, detail = FAIL, f"check crashed: {_short(exc)}"
        failed = failed or status == FAIL
        out(f"{status:<4}  {name:<13} {detail}")
    return 1 if failed else 0


def _where(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return f"sqlite {sqlite_path(url)}"
    return f"{parts.scheme.split('+')[0]} {parts.hostname}:{parts.port or ''}{parts.path}"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
