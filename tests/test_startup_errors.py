"""`vwin serve` with an unusable setting: one clear line on stderr, exit 2, before any URL is
printed, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from server import preflight
from server.config import load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def serve(tmp_path: Path, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VWIN_")}
    env.update({"VWIN_SERVER_PORT": str(port),
                "VWIN_STORAGE_URL": f'"sqlite+aiosqlite:///{tmp_path / "vwin.db"}"',
                "VWIN_RECORDING_DIR": f'"{tmp_path / "rec"}"',
                "VWIN_RECORDING_LOCAL_RECORDER": "false", **extra})
    return subprocess.run([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("setting", "says"), [
    ({"VWIN_SERVER_TIMEZONE": '"Mars/Olympus"'}, "Mars/Olympus"),
    ({"VWIN_SERVER_COLOUR": '"red"'}, "server.colour"),
    ({"VWIN_JOINT_ACTIONS_FILE": '"/nonexistent/actions.toml"'}, "/nonexistent/actions.toml"),
    ({"VWIN_JOINT_CALENDAR_DIR": '"/nonexistent/calendar"'}, "/nonexistent/calendar"),
    ({"VWIN_STORAGE_URL": '"postgresql+asyncpg://vwin:s3cret@127.0.0.1:1/none"'}, "database"),
    ({"VWIN_ROUTING_BACKEND": '"redis"', "VWIN_ROUTING_REDIS_URL": '"redis://127.0.0.1:1/0"'},
     "redis"),
    ({"VWIN_RECORDING_DIR": '"/proc/vwin-recordings"'}, "/proc/vwin-recordings"),
])
def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path, setting: dict[str, str],
                                               says: str) -> None:
    done = serve(tmp_path, setting)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("vwin: "), done.stderr
    assert says in lines[0].lower() or says in lines[0]
    assert "Traceback" not in done.stderr and "s3cret" not in done.stderr
    assert "http://" not in done.stdout


def test_a_busy_port_is_one_line_and_exit_2(tmp_path: Path, busy_port: int) -> None:
    done = serve(tmp_path, {"VWIN_SERVER_PORT": str(busy_port)})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert str(busy_port) in lines[0] and "http://" not in done.stdout


def test_local_turn_without_coturn_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """coturn is installed on this machine, so its absence is the one thing faked here."""
    settings = load_settings(env={}, overrides={"turn": {
        "local": True, "secret": "s", "urls": ["turn:127.0.0.1:3478?transport=udp"]}})
    preflight.check_files(settings)  # installed: passes
    monkeypatch.setattr(preflight, "find_turnserver", lambda: None)
    with pytest.raises(preflight.StartupError, match="apt-get install coturn"):
        preflight.check_files(settings)
