"""deploy/: the systemd units for `run` and `web`, hardened, and valid for systemd-analyze verify."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.botrun import ROOT

UNITS = {"privacy-bot.service": "run", "privacy-bot-web.service": "web"}
HARDENING = {
    "UMask": "0077",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/privacy-bot",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "EnvironmentFile": "/etc/privacy-bot/env",
    "Restart": "always",
    "User": "privacy-bot",
    "WorkingDirectory": "/var/lib/privacy-bot",
}


def service_section(path: Path) -> dict[str, str]:
    """The [Service] keys of a unit file (the last value of a key repeated)."""
    section, out = "", {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_units_are_hardened(unit: str) -> None:
    keys = service_section(ROOT / "deploy" / unit)
    for key, value in HARDENING.items():
        assert keys.get(key) == value, (unit, key, keys.get(key))
    assert keys["ExecStart"] == f"/opt/privacy-bot/bin/privacy-bot --config /etc/privacy-bot/bot.toml {UNITS[unit]}"
    assert keys["CapabilityBoundingSet"] == ""  # no capability at all
    assert "[Install]" in (ROOT / "deploy" / unit).read_text()


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """The units as `init` writes them (this installation's program, which must exist for verify)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "init", str(site), "--data-dir",
                        str(tmp_path / "data")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    units = [site / "systemd" / unit for unit in sorted(UNITS)]
    for unit in units:
        assert "/opt/privacy-bot" not in unit.read_text()
        assert Path(service_section(unit)["ExecStart"].split()[0]).exists()
    check = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True,
                           timeout=120)
    if check.returncode and "Failed to initialize manager" in check.stderr + check.stdout:
        pytest.skip(f"systemd-analyze cannot run in this container: {check.stderr.strip()[-200:]}")
    complaints = [line for line in (check.stdout + check.stderr).splitlines()
                  if any(unit.name in line for unit in units)]
    assert check.returncode == 0 and not complaints, check.stdout + check.stderr
