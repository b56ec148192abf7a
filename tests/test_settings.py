"""One settings object: every tunable is declared in ``migrator/config.py``, which alone reads
the environment, and every declared setting is parsed and bounded there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from migrator import create_app
from migrator.config import SETTINGS, ConfigError, load_config, validate_config

PACKAGE = Path(__file__).resolve().parent.parent / "migrator"


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines that touch ``os.environ``, ``os.getenv`` or ``os.putenv`` (also imported bare)."""
    names = {"environ", "environb", "getenv", "putenv", "unsetenv"}
    # ``request.environ`` (the WSGI environ of a request) is no setting
    attribute = [n.lineno for n in ast.walk(tree)
                 if isinstance(n, ast.Attribute) and n.attr in names
                 and not (isinstance(n.value, ast.Name) and n.value.id == "request")]
    imported = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                and n.module == "os" and any(a.name in names for a in n.names)]
    return sorted(attribute + imported)


def test_only_config_reads_the_environment():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "config.py" or "migrations" in path.parts:
            continue
        for line in _environment_reads(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    assert not offenders, "read settings through migrator.config: " + ", ".join(offenders)


def test_the_scan_finds_environment_reads():
    for code in ("import os\nos.environ.get('X')", "import os\nos.getenv('X')",
                 "from os import environ", "import os as o\no.environ['X']"):
        assert _environment_reads(ast.parse(code)), code
    assert not _environment_reads(ast.parse("import os\nos.getpid()"))
    assert not _environment_reads(ast.parse("from flask import request\nrequest.environ"))


def test_every_setting_has_its_default_and_type(tmp_path):
    cfg = load_config(str(tmp_path), {})
    for setting in SETTINGS:
        if setting.name == "DATABASE_URL":
            assert cfg[setting.name].startswith("sqlite:///")
            continue
        assert cfg[setting.name] == setting.default, setting.name
    assert cfg["RUNNER_LEASE_SECONDS"] == 30 and cfg["RUNNER_RECHECK_SECONDS"] is None
    assert (cfg["MIGRATOR_PORT"], cfg["SANDBOX_PORT"], cfg["DEMO_SMTP_PORT"]) == (5000, 8765, 8025)


def test_values_from_the_environment_are_typed(tmp_path):
    cfg = load_config(str(tmp_path), {
        "RUNNER_INTERVAL_SECONDS": "0.5", "MEMBER_MAX_ATTEMPTS": "7", "SMTP_STARTTLS": "yes",
        "RUNNER_RECHECK_SECONDS": "10", "MAX_API_URL": "http://127.0.0.1:8765/",
        "SANDBOX_PORT": "9000", "MIGRATOR_ENV": "production"})
    assert cfg["RUNNER_INTERVAL_SECONDS"] == 0.5
    assert cfg["MEMBER_MAX_ATTEMPTS"] == 7
    assert cfg["SMTP_STARTTLS"] is True
    assert cfg["RUNNER_RECHECK_SECONDS"] == 10.0
    assert cfg["MAX_API_URL"] == "http://127.0.0.1:8765"
    assert cfg["SANDBOX_PORT"] == 9000
    assert cfg["ENV"] == "production"


@pytest.mark.parametrize("name,value", [
    ("RUNNER_LEASE_SECONDS", "soon"), ("MAX_RPS", "0"), ("RUNNER_INTERVAL_SECONDS", "0"),
    ("MEMBER_MAX_ATTEMPTS", "-1"), ("SANDBOX_PORT", "1.5"),
])
def test_bad_values_are_refused(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        validate_config(load_config(str(tmp_path), {name: value}))


def test_overrides_are_validated_too(app_config):
    app_config["STEP_MAX_ATTEMPTS"] = 0
    with pytest.raises(ConfigError, match="STEP_MAX_ATTEMPTS"):
        create_app(app_config)
