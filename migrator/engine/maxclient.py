"""How the engine gets its Max client: the app's shared one (rate limiter, call audit)."""

from __future__ import annotations

from flask import current_app


def client_factory():
    """A callable returning the Max client, created lazily once per run."""
    cache: dict = {}

    def get():
        if "client" not in cache:
            cache["client"] = _make()
        return cache["client"]

    return get


def _make():
    try:
        from migrator.max.service import get_client
    except ImportError:  # the Max app side not there yet: a plain client with a limiter
        from migrator.max.client import MaxClient
        from migrator.max.ratelimit import MemoryLimiter

        cfg = current_app.config
        return MaxClient(cfg["MAX_API_URL"], cfg["MAX_BOT_TOKEN"],
                         limiter=MemoryLimiter(cfg["MAX_RPS"]))
    return get_client()
