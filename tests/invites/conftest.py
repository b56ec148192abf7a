"""Fixtures for the invitation tests: a real SMTP server the app is configured to use."""

from __future__ import annotations

import pytest
from smtp_helpers import SmtpSink


@pytest.fixture
def smtp_server(app):
    """A running :class:`SmtpSink`; the app's SMTP_HOST/PORT point at it."""
    sink = SmtpSink().start()
    app.config.update(SMTP_HOST=sink.host, SMTP_PORT=sink.port,
                      MAIL_FROM="Migrator <migrator@region.example>")
    yield sink
    sink.stop()
