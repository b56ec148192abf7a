"""Every setting config.py reads is documented; log lines carry ids, JSON on request, and
never a secret."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from migrator import create_app
from migrator.config import SETTINGS, ConfigError, load_config, validate_config

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> set[str]:
    """The environment variables config.py reads: its settings, and the cookie switch."""
    return {s.env or s.name for s in SETTINGS} | {"SESSION_COOKIE_SECURE"}


def test_env_example_lists_every_setting():
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    listed = {m.group(1) for line in lines if (m := re.match(r"#?\s*([A-Z][A-Z0-9_]+)=", line))}
    missing = _declared() - listed
    assert not missing, f".env.example lacks {sorted(missing)}"
    # each setting has a comment line above it (or above its block of settings)
    for i, line in enumerate(lines):
        if re.match(r"[A-Z][A-Z0-9_]+=", line):
            j = i - 1
            while j >= 0 and re.match(r"[A-Z][A-Z0-9_]+=", lines[j]):
                j -= 1
            assert j >= 0 and lines[j].startswith("#"), f"no comment for {line}"


def test_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = {name for name in _declared() if f"`{name}`" not in readme}
    assert not missing, f"README's settings table lacks {sorted(missing)}"


def test_env_example_loads_as_a_production_configuration(tmp_path):
    env = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if re.match(r"[A-Z][A-Z0-9_]+=", line):
            key, _, value = line.partition("=")
            env[key] = value
    env.update(SECRET_KEY="Kx7-q2Lm9Zr4Tb8Wc1Vn6Ys3Hd5Jf0Pa_Ue", MAX_BOT_TOKEN="t" * 20,
               MAX_WEBHOOK_SECRET="w9E-r2T_y7U4i1O8p3A6s5D0fG-hJkLzXc")
    validate_config(load_config(str(tmp_path), env))
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        validate_config(load_config(str(tmp_path), {**env, "LOG_FORMAT": "xml"}))


def test_json_log_lines_carry_the_request_id_and_no_secret(app_config):
    app = create_app({**app_config, "LOG_FORMAT": "json"})
    handler = logging.getLogger("migrator").handlers[0]
    stream = handler.setStream(__import__("io").StringIO())
    try:
        client = app.test_client()
        resp = client.get("/healthz", headers={"X-Request-Id": "req-123"})
        assert resp.headers["X-Request-Id"] == "req-123"
        logging.getLogger("migrator.max").warning("token %s", app.config["MAX_BOT_TOKEN"])
        out = handler.stream.getvalue()
    finally:
        handler.setStream(stream)
        app.extensions["migrator.engine"].dispose()
        create_app(app_config).extensions["migrator.engine"].dispose()  # text lines again
    records = [json.loads(line) for line in out.splitlines()]
    line = next(r for r in records if r["logger"] == "migrator.request")
    assert line["request_id"] == "req-123" and "GET /healthz 200" in line["message"]
    assert {"time", "level", "message"} <= set(line)
    assert app.config["MAX_BOT_TOKEN"] not in out and "***" in out


def test_scheduler_jobs_log_one_line_with_a_run_id(app, ctx, caplog):
    from migrator.engine import scheduler

    caplog.set_level(logging.INFO, logger="migrator")
    scheduler._APP = app
    scheduler.job_reminders()
    scheduler.job_reminders()
    lines = [r for r in caplog.records if r.getMessage().startswith("job send_reminders done")]
    assert len(lines) == 2
    assert all(r.run_id for r in lines) and lines[0].run_id != lines[1].run_id
