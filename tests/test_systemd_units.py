"""configs/systemd: the units verify clean with `systemd-analyze verify` and are hardened."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "configs" / "systemd"
INSTALL_DIR = "/opt/vwin"  # where the units expect the checkout (README "Run as a service")
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
             "PrivateTmp": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes"}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


@pytest.mark.parametrize("name", ["vwin.service", "vwin-recorder.service"])
def test_unit_restarts_on_failure_as_its_own_user_hardened(name: str) -> None:
    service = unit(name)["Service"]
    assert service["Restart"] == "on-failure"
    assert service["User"] == "vwin" and service["Group"] == "vwin"
    assert service["ExecStart"].startswith(f"{INSTALL_DIR}/.venv/bin/vwin ")
    for key, value in HARDENING.items():
        assert service[key] == value, key
    assert "vwin" in (UNITS / "vwin.sysusers").read_text()


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: `make install-test` installs Debian's systemd"
    # The units name the installed checkout; verify checks that ExecStart exists, so point
    # them at this one (it has .venv/bin/vwin) and change nothing else.
    paths = []
    for name in ("vwin.service", "vwin-recorder.service"):
        text = (UNITS / name).read_text().replace(INSTALL_DIR, str(ROOT))
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    result = subprocess.run([analyze, "verify", *paths], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr)
