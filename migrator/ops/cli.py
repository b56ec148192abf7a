"""``flask doctor`` and ``flask backup create|restore``."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale, gettext

from migrator.audit.service import Actor, acting_as, record
from migrator.db import get_engine, get_session
from migrator.ops import backup, checks

CLI_ACTOR = Actor("system", "cli", "command line")


@click.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """Check configuration, database, scheduler, Max, webhook, SMTP and the outboxes; exit 1
    naming what fails."""
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        report = checks.doctor()
        for c in report.checks:
            mark = gettext("OK") if c.ok else (gettext("FAIL") if c.required
                                               else gettext("warning"))
            click.echo(f"[{mark}] {c.label}: {c.text()}")
        if report.ok:
            click.echo(gettext("Everything holds."))
            return
        click.echo(gettext("Failing: %(names)s", names=", ".join(c.label for c in report.failing)),
                   err=True)
    sys.exit(1)


@click.group("backup")
def backup_cli():
    """Consistent backups of the database and their restore."""


@backup_cli.command("create")
@click.argument("file", type=click.Path(dir_okay=False))
@with_appcontext
def backup_create(file: str) -> None:
    """Write a consistent snapshot of the database to FILE (a new file)."""
    url = current_app.config["DATABASE_URL"]
    try:
        kind = backup.create(url, file)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    with acting_as(CLI_ACTOR):
        record("ops.backup_created", object_type="database", summary={"kind": kind})
        get_session().commit()
    click.echo(f"Backup written to {file} ({kind}).")


@backup_cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace a database that holds data.")
@with_appcontext
def backup_restore(file: str, force: bool) -> None:
    """Restore FILE into the (empty) database; then run «audit verify»."""
    url = current_app.config["DATABASE_URL"]
    get_session().close()  # no connection may stay open on the old database
    try:
        kind = backup.restore(url, file, get_engine(), force=force)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    with acting_as(CLI_ACTOR):
        record("ops.backup_restored", object_type="database",
               summary={"kind": kind, "forced": force})
        get_session().commit()
    click.echo(f"Restored {file} ({kind}). Check it with: flask --app app audit verify")
