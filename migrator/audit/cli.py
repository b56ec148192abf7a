"""``flask audit verify``."""

from __future__ import annotations

import sys
import time

import click
from flask.cli import with_appcontext

from migrator.audit.models import AuditEvent
from migrator.audit.service import verify
from migrator.db import get_session


@click.group("audit")
def audit_cli():
    """Audit trail commands."""


@audit_cli.command("verify")
@click.option("--from-seq", type=click.IntRange(min=1), default=1, show_default=True,
              help="Resume from this event (its link to the event before is still checked).")
@click.option("--batch", type=click.IntRange(min=100), default=5000, show_default=True,
              help="Events read per query.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@with_appcontext
def verify_command(from_seq: int, batch: int, quiet: bool):
    """Check the audit hash chain; exit 1 naming the first broken event."""
    session = get_session()
    started = time.monotonic()
    last_report = [started]

    def progress(checked: int, seq: int) -> None:
        now = time.monotonic()
        if not quiet and now - last_report[0] >= 2:
            last_report[0] = now
            rate = checked / max(now - started, 1e-6)
            click.echo(f"... {checked} events checked, up to #{seq} ({rate:,.0f}/s)", err=True)

    result = verify(session, from_seq=from_seq, batch=batch, progress=progress)
    elapsed = time.monotonic() - started
    if result.ok:
        start = f" from #{from_seq}" if from_seq > 1 else ""
        click.echo(f"Audit chain OK: {result.checked} events verified{start} in {elapsed:.1f}s. "
                   f"Head: #{result.last_seq} {result.last_hash}")
        return
    table = AuditEvent.__table__
    ev = session.execute(table.select().where(table.c.seq == result.broken_seq)).first()
    what = ""
    if ev is not None:
        what = f" ({ev.action}, {ev.created_at:%Y-%m-%d %H:%M:%S} UTC, actor {ev.actor_label})"
    click.echo(
        f"Audit chain BROKEN at event #{result.broken_seq}{what}: {result.reason}. "
        f"{result.checked} events before it are intact (last good: #{result.last_seq}).",
        err=True,
    )
    sys.exit(1)
