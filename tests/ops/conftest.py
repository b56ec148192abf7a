"""Operations tests: the remote checks' cache is per process, so each test starts clean."""

from __future__ import annotations

import pytest

from migrator.ops import checks


@pytest.fixture(autouse=True)
def _fresh_check_cache():
    checks.clear_cache()
    yield
    checks.clear_cache()


@pytest.fixture
def ready_world(sandbox, app, smtp_server, live_server):
    """Max (the sandbox) accepts the token and delivers to our webhook; SMTP answers."""
    from migrator.max.client import MaxClient

    with MaxClient(sandbox.url, app.config["MAX_BOT_TOKEN"]) as client:
        client.subscribe(f"{live_server.url}/max/webhook",
                         secret=app.config["MAX_WEBHOOK_SECRET"])
    return sandbox
