"""Settings: defaults, then the file, then `VWIN_...`; unknown keys named, bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, load_settings


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vwin.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings(env={})
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.storage.url.startswith("sqlite+aiosqlite:///")
    assert settings.routing.backend == "memory"
    assert [q.id for q in settings.queues] == ["tax", "registration", "deregistration", "general"]
    tax = settings.queues[0]
    assert (tax.target_answer_s, tax.ring_timeout_s, tax.wrapup_s, tax.strategy,
            tax.decline_block_s) == (900, 20, 30, "longest-idle", 60)
    assert settings.server.resume_grace_s == 30 and settings.server.hello_timeout_s == 10
    assert settings.server.idle_timeout_s == 30 and settings.ice.servers == []


def test_file_queues_replace_the_default_set(tmp_path: Path) -> None:
    path = toml(tmp_path, '[server]\nport = 9001\n\n[[queues]]\nid = "tax"\nname = "Tax"\n'
                          'ring_timeout_s = 5\n\n[[queues]]\nid = "social"\nname = "Social"\n'
                          'strategy = "fewest-calls"\n')
    settings = load_settings(path, env={})
    assert [q.id for q in settings.queues] == ["tax", "social"]
    assert settings.queues[0].ring_timeout_s == 5 and settings.queues[0].wrapup_s == 30
    assert settings.server.port == 9001 and settings.server.host == "127.0.0.1"


def test_a_file_without_queues_keeps_the_defaults(tmp_path: Path) -> None:
    path = toml(tmp_path, '[ice]\nservers = [{urls = ["stun:s.example:3478"]}]\n')
    settings = load_settings(path, env={})
    assert len(settings.queues) == 4
    assert settings.ice.servers == [{"urls": ["stun:s.example:3478"]}]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, "[server]\nport = 9001\n")
    settings = load_settings(path, env={"VWIN_SERVER_PORT": "9100",
                                        "VWIN_ROUTING_BACKEND": "redis",
                                        "VWIN_SERVER_ALLOWED_ORIGINS": '["https://a.example"]',
                                        "OTHER_VARIABLE": "ignored"})
    assert settings.server.port == 9100 and settings.routing.backend == "redis"
    assert settings.server.allowed_origins == ["https://a.example"]


@pytest.mark.parametrize("text,named", [
    ("[server]\nprot = 1\n", "server.prot"),
    ("[storage]\nurl = 'sqlite+aiosqlite:///x.db'\npool = 3\n", "storage.pool"),
    ("[colour]\nred = 1\n", "colour"),
    ('[[queues]]\nid = "tax"\nname = "Tax"\nring_timeout = 5\n', "ring_timeout"),
])
def test_unknown_file_keys_are_named(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(toml(tmp_path, text), env={})


@pytest.mark.parametrize("name", ["VWIN_SERVER_PROT", "VWIN_NOSECTION_KEY"])
def test_unknown_environment_keys_are_named(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env={name: "1"})


@pytest.mark.parametrize("strategy", ["longest-idle", "fewest-calls", "round-robin"])
def test_every_strategy_is_accepted(tmp_path: Path, strategy: str) -> None:
    path = toml(tmp_path, f'[[queues]]\nid = "tax"\nname = "Tax"\nstrategy = "{strategy}"\n'
                          'decline_block_s = 5\n')
    (tax,) = load_settings(path, env={}).queues
    assert (tax.strategy, tax.decline_block_s) == (strategy, 5)


def test_a_queue_priority_puts_its_walk_ins_first(tmp_path: Path) -> None:
    """Lower first: registration's walk-ins before deregistration's (0 by default)."""
    path = toml(tmp_path, '[[queues]]\nid = "reg"\nname = "R"\n'
                          '[[queues]]\nid = "dereg"\nname = "D"\npriority = 5\n')
    assert [(q.id, q.priority) for q in load_settings(path, env={}).queues] == [
        ("reg", 0), ("dereg", 5)]


@pytest.mark.parametrize("queue,named", [
    ('strategy = "random"', "strategy"),
    ('overflow_to = "nowhere"', "overflow_to"),
    ("ring_timeout_s = 0", "tax"),
    ('ring_timeout_s = "soon"', "ring_timeout_s"),
    ("decline_block_s = 0", "decline_block_s"),
    ("decline_block_s = 1e9", "decline_block_s"),
    ("priority = -1", "priority"),  # ahead of appointments
    ("priority = 101", "priority"),
])
def test_bad_queue_settings(tmp_path: Path, queue: str, named: str) -> None:
    path = toml(tmp_path, f'[[queues]]\nid = "tax"\nname = "Tax"\n{queue}\n')
    with pytest.raises(ConfigError, match=named):
        load_settings(path, env={})


@pytest.mark.parametrize("text", [
    '[[queues]]\nid = "tax"\nname = "A"\n[[queues]]\nid = "tax"\nname = "B"\n',
    "[routing]\nreorder_hold_s = 0\n",
    "[storage]\nurl = 'mysql://x'\n",
    '[routing]\nbackend = "etcd"\n',
    "not = [valid toml",
])
def test_unusable_configurations(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError):
        load_settings(toml(tmp_path, text), env={})


@pytest.mark.parametrize("routing", [
    "reorder_cap_s = 0.5", "reorder_cap_s = 601", "reorder_hold_s = 2\nreorder_cap_s = 1.5"])
def test_the_reorder_cap_is_at_least_the_hold(tmp_path: Path, routing: str) -> None:
    queue = '[[queues]]\nid = "tax"\nname = "Tax"\n'
    with pytest.raises(ConfigError, match="reorder_cap_s"):
        load_settings(toml(tmp_path, f"[routing]\n{routing}\n{queue}"), env={})
    good = load_settings(toml(tmp_path, f"[routing]\nreorder_cap_s = 60\n{queue}"), env={})
    assert (good.routing.reorder_hold_s, good.routing.reorder_cap_s) == (1.0, 60.0)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", env={})


def test_kiosk_idle_reset(tmp_path: Path) -> None:
    assert load_settings(env={}).kiosk.idle_reset_s == 90
    configured = load_settings(toml(tmp_path, "[kiosk]\nidle_reset_s = 45\n"), env={})
    assert configured.kiosk.idle_reset_s == 45
    assert load_settings(env={"VWIN_KIOSK_IDLE_RESET_S": "30"}).kiosk.idle_reset_s == 30
    with pytest.raises(ConfigError, match="idle_reset_s"):
        load_settings(toml(tmp_path, "[kiosk]\nidle_reset_s = 0\n"), env={})
