"""Fixtures for the Max app-side tests: a real sandbox over HTTP, the app pointed at it."""

from __future__ import annotations

import pytest
from maxapp_support import SECRET, TOKEN


@pytest.fixture
def sandbox(shared_sandbox):
    """The shared sandbox, reset (the app is pointed at it by ``app_config`` below)."""
    return shared_sandbox


@pytest.fixture
def app_config(app_config, sandbox):
    app_config.update(MAX_API_URL=sandbox.url, MAX_BOT_TOKEN=TOKEN, MAX_WEBHOOK_SECRET=SECRET,
                      MAX_BOT_USERNAME="migrator_test_bot")
    return app_config


@pytest.fixture
def deliver(client):
    """POST an update to the webhook with the right secret; returns the response."""

    def post(update, secret=SECRET):
        headers = {} if secret is None else {"X-Max-Bot-Api-Secret": secret}
        return client.post("/max/webhook", json=update, headers=headers)

    return post
