"""The list of blueprints, one per feature (each feature adds its line here)."""

from __future__ import annotations

from importlib import import_module

from flask import Flask

BLUEPRINTS = [
    "migrator.auth.views:bp",
    "migrator.core.views:bp",
    "migrator.waves.views:bp",
    "migrator.engine.views:bp",
    "migrator.progress.views:bp",
    "migrator.audit.views:bp",
    "migrator.imports.views:bp",
    "migrator.org.views:bp",
    "migrator.people.views:bp",
    "migrator.groups.views:bp",
    "migrator.max.views:bp",
    "migrator.max.webhook:bp",
]


def register(app: Flask) -> None:
    from migrator.api import init_api

    for spec in BLUEPRINTS:
        module, _, attr = spec.partition(":")
        app.register_blueprint(getattr(import_module(module), attr))
    init_api(app)
