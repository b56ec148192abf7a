"""End-to-end fixtures: the Max sandbox over HTTP delivering webhooks to the live app, and a
real SMTP server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from enginetest import SandboxCtl  # noqa: E402
from smtp_helpers import SmtpSink  # noqa: E402

from migrator.sandbox import create_sandbox_app, run_in_thread  # noqa: E402


@pytest.fixture
def sandbox(app_config):
    sb_app = create_sandbox_app(token=app_config["MAX_BOT_TOKEN"],
                                bot_username=app_config["MAX_BOT_USERNAME"], rps=None)
    handle = run_in_thread(sb_app)
    app_config["MAX_API_URL"] = handle.url
    app_config["RUNNER_BACKOFF_SECONDS"] = 0
    ctl = SandboxCtl(handle.url)
    yield ctl
    ctl.http.close()
    handle.shutdown()


@pytest.fixture
def smtp(app_config):
    sink = SmtpSink().start()
    app_config.update(SMTP_HOST=sink.host, SMTP_PORT=sink.port,
                      MAIL_FROM="Migrator <migrator@region.example>")
    yield sink
    sink.stop()
