"""Settings: embedded defaults, then a TOML file, then `VWIN_...` environment variables.

Unknown keys are an error that names the key, so a typo never silently falls
back to a default. Each component is handed only its own section.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from signaling.hours import HoursError, parse_hours
from signaling.model import QueueConfig
from signaling.strategies import STRATEGIES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "default.toml"
ENV_PREFIX = "VWIN_"


class ConfigError(Exception):
    """The configuration is unusable; the message names the key."""


class ServerSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080
    node_id: str = ""
    allowed_origins: list[str] = msgspec.field(default_factory=list)
    timezone: str = "Asia/Shanghai"
    resume_grace_s: float = 30.0
    hello_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    rate_per_s: float = 50.0
    rate_burst: int = 200
    send_queue: int = 512
    drain_timeout_s: float = 10.0
    tls_cert: str = ""  # PEM certificate chain: `vwin serve` then serves HTTPS and WSS itself
    tls_key: str = ""
    trusted_proxies: list[str] = msgspec.field(default_factory=list)  # addresses or CIDRs
    slow_step_ms: Annotated[float, msgspec.Meta(ge=0)] = 500.0  # logged with its waits; 0: never


class StorageSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    url: str = "sqlite+aiosqlite:///./var/vwin.db"
    # Session-log group commits at once when they share no session (PostgreSQL; SQLite has
    # one writer): more only where PostgreSQL has cores of its own (docs/storage.md)
    log_groups_in_flight: Annotated[int, msgspec.Meta(ge=1, le=16)] = 1


class RoutingSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "vwin"
    # A numbered message whose predecessor (decided on another node) has not arrived waits
    # at most this long once a node was lost within `reorder_cap_s` (its decisions may never
    # be sent); while every node is alive a missing message is only late (a stalled node's
    # slow log append) and waits up to the cap (docs/cluster.md "Order across nodes")
    reorder_hold_s: float = 1.0
    reorder_cap_s: float = 30.0
    # Every this often a node over its fair share of the live nodes' sockets (the mean) by
    # this tolerance moves a few idle kiosks to the others (docs/cluster.md); 0: never
    rebalance_interval_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 5.0
    rebalance_tolerance: Annotated[float, msgspec.Meta(ge=0, le=10)] = 0.1


class AuthSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token_ttl_s: int = 12 * 3600
    ticket_ttl_s: int = 60
    max_failures: int = 5  # per (user, client address), then delays that double
    max_failures_per_address: int = 20  # per client address, whatever the usernames
    max_delay_s: int = 900  # the longest delay a throttled login waits
    failure_window_s: int = 300
    purge_interval_s: float = 600.0  # expired tokens, tickets, throttle records are deleted
    secure_cookies: bool = False
    hello_batch: bool = True  # concurrent hellos share one token query (false: one each)


class LimitsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Per client address (the real one behind trusted proxies); the excess gets HTTP 429."""

    ws_per_address: int = 50  # open /ws connections (a site's kiosks may share one NAT)
    unauthenticated_per_address: int = 10  # /ws connections that have not sent `hello` yet


class IceSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    servers: list[dict[str, Any]] = msgspec.field(default_factory=list)


class TurnSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """TURN with time-limited REST credentials (coturn's `use-auth-secret`); server/turn.py."""

    secret: str = ""  # coturn's static-auth-secret; empty: no TURN credentials are handed out
    urls: list[str] = msgspec.field(default_factory=list)
    ttl_s: int = 86400
    local: bool = False  # `vwin serve` runs Debian's `turnserver` beside itself
    realm: str = "vwin"
    listen_ip: str = ""  # the local turnserver's listening and relay address ("" = all)
    external_ip: str = ""  # public address when coturn is behind NAT (coturn's external-ip)
    port: int = 3478
    tls_port: int = 5349  # turns: with [server] tls_cert/tls_key
    min_port: int = 49160
    max_port: int = 49400
    recorder_hosts: list[str] = msgspec.field(default_factory=list)  # relaying to them allowed
    allow_loopback: bool = False  # tests on one machine only: relay to 127.0.0.1


class RecordingSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    dir: str = "./var/recordings"
    required: bool = False
    retention_days: int = 365
    retention_interval_s: float = 3600.0
    local_recorder: bool = True
    capacity: int = 16
    token: str = ""
    wait_s: float = 10.0  # a call connecting while no recorder has room waits this long for one


class JointSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Joint actions and pending matters; relative paths are from the project root."""

    actions_file: str = "configs/actions.toml"
    calendar_dir: str = "configs/calendar"
    close_time: str = "17:30"  # local time the windows close: later matters count from tomorrow


class DocumentsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Documents captured in a call (server/documents.py): stored beside the recordings."""

    max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = 8 * 1024 * 1024
    max_pixels: Annotated[int, msgspec.Meta(ge=10_000, le=200_000_000)] = 40_000_000


class MaterialsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The materials a visitor should have ready, per queue and action (server/materials.py)."""

    file: str = "configs/materials.toml"  # relative paths are from the project root


class FormsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Forms a visitor signs (docs/forms.md): templates, and the processes that render them.

    Signed forms are stored under `[recording] dir`, in the session's folder."""

    enabled: bool = True
    templates_dir: str = "configs/forms"  # relative: from the project root, like [joint]
    workers: Annotated[int, msgspec.Meta(ge=1, le=16)] = 1  # rendering processes
    nice: Annotated[int, msgspec.Meta(ge=0, le=19)] = 10  # they yield the CPU to live calls


class Department(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A department staff belong to (`vwin user add --department ID`); pages show its name."""

    id: str
    name: str
    name_en: str


class LogSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where operators read what the service does (server/logs.py)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"
    access: Literal["requests", "all", "none"] = "requests"  # requests: not static, /healthz


class MetricsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Who may read `GET /metrics`: a bearer token, or these addresses (CIDRs)."""

    token: str = ""
    allow: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])


class KioskSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The kiosk page: after this long without a touch it forgets the visitor."""

    idle_reset_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 90.0


class AppointmentSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Booking slots of the queues (`[[queues]] slot_minutes`, `appointments_per_slot`)."""

    horizon_days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 14  # how far ahead one books
    bookings_per_hour: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 30  # per address
    early_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 600.0  # arrival before start
    late_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 900.0  # arrival after start
    no_show_check_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0  # sweep interval


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    storage: StorageSettings = msgspec.field(default_factory=StorageSettings)
    routing: RoutingSettings = msgspec.field(default_factory=RoutingSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    ice: IceSettings = msgspec.field(default_factory=IceSettings)
    limits: LimitsSettings = msgspec.field(default_factory=LimitsSettings)
    turn: TurnSettings = msgspec.field(default_factory=TurnSettings)
    recording: RecordingSettings = msgspec.field(default_factory=RecordingSettings)
    joint: JointSettings = msgspec.field(default_factory=JointSettings)
    forms: FormsSettings = msgspec.field(default_factory=FormsSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    kiosk: KioskSettings = msgspec.field(default_factory=KioskSettings)
    appointments: AppointmentSettings = msgspec.field(default_factory=AppointmentSettings)
    documents: DocumentsSettings = msgspec.field(default_factory=DocumentsSettings)
    materials: MaterialsSettings = msgspec.field(default_factory=MaterialsSettings)
    queues: list[QueueConfig] = msgspec.field(default_factory=list)
    departments: list[Department] = msgspec.field(default_factory=list)

    def department(self, department_id: str) -> Department:
        """The configured department `department_id`; ConfigError listing the valid ones."""
        for department in self.departments:
            if department.id == department_id:
                return department
        known = ", ".join(f"{d.id} ({d.name})" for d in self.departments)
        raise ConfigError(f"unknown department {department_id!r}; configured: {known}")


_SECTIONS: dict[str, type[msgspec.Struct]] = {
    "server": ServerSettings, "storage": StorageSettings, "routing": RoutingSettings,
    "auth": AuthSettings, "ice": IceSettings, "turn": TurnSettings, "recording": RecordingSettings,
    "joint": JointSettings, "log": LogSettings, "metrics": MetricsSettings, "kiosk": KioskSettings,
    "limits": LimitsSettings, "appointments": AppointmentSettings,
    "documents": DocumentsSettings, "materials": MaterialsSettings, "forms": FormsSettings,
}


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults (configs/default.toml), then `path`, then the environment, then overrides."""
    data = _read_toml(DEFAULT_CONFIG)
    if path is not None:
        extra = _read_toml(Path(path))
        for listed in ("queues", "departments"):  # a file's list replaces the default one
            if listed in extra:
                data.pop(listed, None)
        _merge(data, extra)
    _merge(data, _from_env(os.environ if env is None else env))
    if overrides:
        _merge(data, dict(overrides))
    try:
        settings = msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc))) from None
    _check(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """`VWIN_SERVER_PORT=9000` -> {"server": {"port": "9000"}}; values are parsed as TOML."""
    sections = set(_SECTIONS)
    out: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(f"unknown environment variable {name}")
        key = rest[len(section) + 1:]
        if key not in _SECTIONS[section].__struct_fields__:
            raise ConfigError(f"unknown environment variable {name} (no key {section}.{key})")
        out.setdefault(section, {})[key] = _env_value(raw)
    return out


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _explain(detail: str) -> str:
    if "unknown field" in detail:
        field = detail.split("`")[1]
        where = detail.rsplit("at `$", 1)[-1].rstrip("`").lstrip(".") if "at `$" in detail else ""
        where = where.split("[")[0]
        return f"unknown configuration key {where + '.' if where else ''}{field}"
    return f"invalid configuration: {detail}"


def _check_timezone(settings: Settings) -> None:
    try:
        ZoneInfo(settings.server.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"server.timezone: unknown time zone {settings.server.timezone!r}"
                          ) from None


def _check_routing(settings: Settings) -> None:
    if not settings.queues:
        raise ConfigError("no [[queues]] configured")
    if not 0 < settings.routing.reorder_hold_s <= 5:
        raise ConfigError("routing.reorder_hold_s: between 0 (excluded) and 5")
    if not settings.routing.reorder_hold_s <= settings.routing.reorder_cap_s <= 600:
        raise ConfigError("routing.reorder_cap_s: between reorder_hold_s and 600")
    ids = [q.id for q in settings.queues]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"duplicate queue id in {ids}")
    for q in settings.queues:
        if q.strategy not in STRATEGIES:
            raise ConfigError(f"queues.{q.id}.strategy: unknown strategy {q.strategy!r}")
        if q.overflow_to is not None and q.overflow_to not in ids:
            raise ConfigError(f"queues.{q.id}.overflow_to: no queue {q.overflow_to!r}")
        if q.ring_timeout_s <= 0 or q.wrapup_s < 0 or q.target_answer_s <= 0:
            raise ConfigError(f"queues.{q.id}: timeouts must be positive")
        _check_queue(q)


def _check_queue(q: QueueConfig) -> None:
    """A queue's own values; `priority` below 0 would go ahead of appointments (-1)."""
    if not 0 < q.decline_block_s <= 86_400:
        raise ConfigError(f"queues.{q.id}.decline_block_s: between 0 (excluded) and 86400")
    if not 0 <= q.priority <= 100:
        raise ConfigError(f"queues.{q.id}.priority: between 0 (first) and 100")
    if q.hours is not None:
        try:
            parse_hours(q.hours)
        except HoursError as exc:
            raise ConfigError(f"queues.{q.id}.hours: {exc}") from None
    if not 5 <= q.slot_minutes <= 240:
        raise ConfigError(f"queues.{q.id}.slot_minutes: between 5 and 240")
    if not 0 <= q.appointments_per_slot <= 100:
        raise ConfigError(f"queues.{q.id}.appointments_per_slot: between 0 and 100")


def _check(settings: Settings) -> None:
    _check_timezone(settings)
    _check_routing(settings)
    _check_edge(settings)
    _check_departments(settings)
    for cidr in settings.metrics.allow:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(f"metrics.allow: {cidr!r} is not an address or CIDR") from None
    if settings.recording.wait_s < 0:
        raise ConfigError("recording.wait_s must be >= 0")
    if not settings.storage.url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError("storage.url must be sqlite+aiosqlite:/// or postgresql+asyncpg://")


def _check_departments(settings: Settings) -> None:
    ids = [d.id for d in settings.departments]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"duplicate department id in {ids}")
    for d in settings.departments:
        if not (d.id and d.name.strip() and d.name_en.strip()):
            raise ConfigError(f"departments.{d.id or '?'}: id, name and name_en are required")


def _check_edge(settings: Settings) -> None:
    """TLS and TURN settings that cannot work are refused at start, naming the key."""
    server, turn = settings.server, settings.turn
    if bool(server.tls_cert) != bool(server.tls_key):
        raise ConfigError("server.tls_cert and server.tls_key go together")
    for entry in server.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"server.trusted_proxies: {entry!r} is not an address") from None
    if turn.secret and not turn.urls:
        raise ConfigError("turn.urls: name the TURN server's URLs when turn.secret is set")
    if turn.local and not turn.secret:
        raise ConfigError("turn.local needs turn.secret (coturn's static-auth-secret)")
    for url in turn.urls:
        if not url.startswith(("turn:", "turns:")):
            raise ConfigError(f"turn.urls: {url!r} is not a turn: or turns: URL")
    if turn.ttl_s < 2 or not 0 < turn.min_port <= turn.max_port < 65536:
        raise ConfigError("turn.ttl_s or turn.min_port/max_port out of range")
