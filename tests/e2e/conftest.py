"""End-to-end fixtures: a real SMTP server configured before the app starts (the Max
sandbox fixture is shared, in tests/conftest.py)."""

from __future__ import annotations

import pytest
from smtp_helpers import SmtpSink


@pytest.fixture
def smtp(app_config):
    sink = SmtpSink().start()
    app_config.update(SMTP_HOST=sink.host, SMTP_PORT=sink.port,
                      MAIL_FROM="Migrator <migrator@region.example>")
    yield sink
    sink.stop()
