"""The systemd units of deploy/ pass ``systemd-analyze verify`` and start what exists."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from deploy_helpers import ROOT, UNITS, exec_start, unit_settings, verify_units


def test_units_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing: .ci/run installs systemd")
        pytest.skip("systemd-analyze is not installed")
    result = verify_units(tmp_path)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr)


def test_units_run_this_checkout_with_the_settings_file():
    for name in UNITS:
        argv = exec_start(name)
        assert os.access(argv[0], os.X_OK), argv
        settings = unit_settings(name)
        assert settings["WorkingDirectory"] == [str(ROOT)]
        assert settings["EnvironmentFile"] == ["/etc/migrator/migrator.env"]
        assert settings["Environment"] == ["PROMETHEUS_MULTIPROC_DIR=/run/migrator/metrics"]
    assert unit_settings("migrator-scheduler.service")["Restart"] == ["always"]
    assert exec_start("migrator-web.service")[1:] == [
        "--config", str(ROOT / "deploy" / "gunicorn.conf.py"), "app:app"]


def test_nginx_body_limit_matches_the_import_limit(tmp_path):
    from deploy_helpers import localised

    from migrator.config import load_config, request_size_limit

    site = localised("nginx-migrator.conf")
    sizes = re.findall(r"^\s{4}client_max_body_size (\d+)m;", site, re.M)
    assert sizes == ["21"], sizes  # the server-wide limit (the webhook has its own)
    assert int(sizes[0]) * 1024 * 1024 == request_size_limit(load_config(str(tmp_path), {}))
    # the proxy headers MIGRATOR_TRUSTED_PROXIES=1 relies on, each set once
    for header in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"):
        assert len(re.findall(rf"proxy_set_header {header} ", site)) == 1, header
