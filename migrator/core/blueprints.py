"""The list of blueprints, one per feature (each feature adds its line here)."""

from __future__ import annotations

from importlib import import_module

from flask import Flask

from migrator.api import init_api

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
    "migrator.ops.views:bp",
    "migrator.directives.views:bp",
]
# Outside production only: the training sandbox page (the demo's Max sandbox in the browser).
DEVELOPMENT_BLUEPRINTS = [
    "migrator.demo.views:bp",
]


def load(spec: str):
    """The object named by ``"package.module:attribute"``."""
    module, _, attr = spec.partition(":")
    return getattr(import_module(module), attr)


def register(app: Flask) -> None:
    for spec in BLUEPRINTS:
        app.register_blueprint(load(spec))
    if app.config["ENV"] != "production":
        for spec in DEVELOPMENT_BLUEPRINTS:
            app.register_blueprint(load(spec))
    init_api(app)
