"""The list of CLI commands, one entry per feature (each feature adds its line here)."""

from __future__ import annotations

from flask import Flask

from migrator.core.blueprints import load

COMMANDS = [
    "migrator.auth.cli:users_cli",
    "migrator.audit.cli:audit_cli",
    "migrator.engine.cli:run_due_command",
    "migrator.engine.cli:scheduler_command",
    "migrator.engine.cli:groups_cli",
    "migrator.demo.cli:demo_cli",
    "migrator.demo.cli:demo_actors_command",
    "migrator.sandbox.cli:sandbox_command",
    "migrator.imports.cli:import_command",
    "migrator.max.cli:max_cli",
    "migrator.ops.cli:doctor_command",
    "migrator.ops.cli:backup_cli",
    "migrator.directives.cli:report_cli",
    "migrator.directives.cli:directives_cli",
]


def register(app: Flask) -> None:
    for spec in COMMANDS:
        app.cli.add_command(load(spec))
