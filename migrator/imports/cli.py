"""``flask import organisations|employees|groups|members FILE [--dry-run]``."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext
from flask_babel import force_locale

from migrator.audit.service import Actor, acting_as
from migrator.imports.parser import KINDS
from migrator.imports.service import import_file

CLI_ACTOR = Actor("system", "cli", "command line")


@click.command("import")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and report; write nothing.")
@with_appcontext
def import_command(kind: str, file: Path, dry_run: bool):
    """Import KIND from FILE (CSV or XLSX): all rows or nothing."""
    with open(file, "rb") as f:
        data = f.read()
    with force_locale("en"), acting_as(CLI_ACTOR):
        result = import_file(kind, file.name, data, dry_run=dry_run)
        if not result.ok:
            for error in result.errors:
                click.echo(str(error), err=True)
            click.echo(f"{len(result.errors)} error(s) in {file.name}; nothing was imported.",
                       err=True)
            raise click.exceptions.Exit(1)
    verb = "would be" if dry_run else "were"
    if kind == "members":
        text = (f"members: {result.rows} rows; {result.created} new memberships {verb} added, "
                f"{result.unchanged} already present.")
    else:
        text = (f"{kind}: {result.rows} rows; {result.created} {verb} created, "
                f"{result.updated} {verb} updated, {result.unchanged} unchanged.")
    click.echo(text + (" Dry run: nothing was written." if dry_run else ""))
