"""Migrator: moves a region's internal communication from WhatsApp/Telegram groups to Max."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def create_app(config_overrides: dict | None = None) -> Flask:
    """The application (:func:`migrator.factory.create_app`). Imported here, not at the top:
    importing ``migrator`` or any of its modules (a worker, the sandbox) stays light."""
    from migrator.factory import create_app as build

    return build(config_overrides)
