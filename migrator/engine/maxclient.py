"""How the engine gets its Max client: the app's shared one (rate limiter, call audit)."""

from __future__ import annotations

from migrator.max.service import get_client


def client_factory():
    """A callable returning the Max client, created lazily once per run."""
    cache: dict = {}

    def get():
        if "client" not in cache:
            cache["client"] = _make()
        return cache["client"]

    return get


def _make():
    return get_client()
