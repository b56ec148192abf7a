"""``flask audit verify``."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from migrator.audit.service import verify
from migrator.db import get_session


@click.group("audit")
def audit_cli():
    """Audit trail commands."""


@audit_cli.command("verify")
@with_appcontext
def verify_command():
    """Check the audit hash chain; exit 1 naming the first broken event."""
    result = verify(get_session())
    if result.ok:
        click.echo(f"Audit chain OK: {result.checked} events verified.")
        return
    click.echo(
        f"Audit chain BROKEN at event #{result.broken_seq}: {result.reason} "
        f"({result.checked} events before it are intact).",
        err=True,
    )
    sys.exit(1)
