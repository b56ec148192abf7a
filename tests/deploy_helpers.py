"""The files of deploy/ as the tests run them: the installation path /opt/migrator becomes
this checkout, everything else stays as shipped (the tests say what else they change)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
INSTALL_DIR = "/opt/migrator"
UNITS = ("migrator-web.service", "migrator-scheduler.service", "migrator-run-due@.service")


def localised(name: str) -> str:
    """A deploy/ file's text with the installation directory pointing at this checkout."""
    return (DEPLOY / name).read_text(encoding="utf-8").replace(INSTALL_DIR, str(ROOT))


def unit_settings(name: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit's ``[Service]`` section (a key may repeat)."""
    settings: dict[str, list[str]] = {}
    section = None
    for line in localised(name).splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def exec_start(name: str) -> list[str]:
    """The unit's ExecStart command line as an argument list."""
    (line,) = unit_settings(name)["ExecStart"]
    return shlex.split(line)


def unit_environment(name: str) -> dict[str, str]:
    env = {}
    for value in unit_settings(name).get("Environment", []):
        for item in shlex.split(value):
            key, _, val = item.partition("=")
            env[key] = val
    return env


def verify_units(tmp_path: Path) -> subprocess.CompletedProcess:
    """``systemd-analyze verify`` on the localised units (the template as instance 1)."""
    paths = []
    for name in UNITS:
        target = tmp_path / name.replace("@.", "@1.")
        target.write_text(localised(name), encoding="utf-8")
        paths.append(str(target))
    return subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True,
                          text=True, timeout=120, check=False)
