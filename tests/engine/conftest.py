"""Engine test fixtures: a Max sandbox the app talks to (started before the app)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from enginetest import SandboxCtl  # noqa: E402

from migrator.sandbox import create_sandbox_app, run_in_thread  # noqa: E402


@pytest.fixture
def sandbox(app_config):
    """A sandbox server; the app's MAX_API_URL points at it (request this before ``app``)."""
    sb_app = create_sandbox_app(token=app_config["MAX_BOT_TOKEN"],
                                bot_username=app_config["MAX_BOT_USERNAME"], rps=None)
    handle = run_in_thread(sb_app)
    app_config["MAX_API_URL"] = handle.url
    app_config["RUNNER_BACKOFF_SECONDS"] = 0  # retries due at once in tests
    ctl = SandboxCtl(handle.url)
    yield ctl
    ctl.http.close()
    handle.shutdown()
