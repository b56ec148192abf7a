"""``flask report ministry --org CODE --out FILE.xlsx`` and ``flask directives check``."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import force_locale

from migrator.audit.service import Actor, acting_as
from migrator.db import get_session
from migrator.directives import report, service
from migrator.org.service import get_by_code

CLI_ACTOR = Actor("system", "cli", "command line")


@click.group("report")
def report_cli():
    """Reports upward."""


@report_cli.command("ministry")
@click.option("--org", "code", required=True, help="Code of the organisation: its subtree.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The XLSX file to write.")
@with_appcontext
def ministry_command(code: str, out: Path):
    """Write the ministry report of ORG's subtree (one row per organisation) to OUT and
    record it with the file's SHA-256 in the audit trail."""
    org = get_by_code(code)
    if org is None:
        raise click.BadParameter(f"no organisation {code!r}", param_hint="--org")
    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]), acting_as(CLI_ACTOR):
        run, data = report.produce(org, None)
        out.write_bytes(data)
        get_session().commit()
    click.echo(f"{out}: {run.rows} organisations, sha256 {run.sha256}")


@click.group("directives")
def directives_cli():
    """Directives and their milestones."""


@directives_cli.command("check")
@with_appcontext
def check_command():
    """Raise and resolve lag escalations now and queue the heads' weekly e-mails."""
    stats = service.check_escalations()
    click.echo("escalations: {raised} raised, {resolved} resolved, {emailed} e-mailed"
               .format(**stats))
