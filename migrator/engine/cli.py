"""``flask run-due`` and ``flask scheduler``."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from migrator.db import close_session
from migrator.engine.jobs import beat
from migrator.engine.runner import run_due, runner_id
from migrator.engine.scheduler import run_scheduler


@click.command("run-due")
@click.option("--limit", default=5, show_default=True,
              help="Steps claimed at a time (each claim has its own short lease).")
@click.option("--no-mail", is_flag=True, help="Do not send the e-mail and bot outboxes.")
@click.option("--loop", "loop_seconds", type=float, default=0,
              help="Repeat every N seconds until killed (a plain worker).")
@with_appcontext
def run_due_command(limit: int, no_mail: bool, loop_seconds: float) -> None:
    """Run the steps that are due now once (cron-friendly), send the outboxes, then exit."""
    import time

    rid = runner_id()
    while True:
        summary = run_due(rid, limit=limit, send_mail=not no_mail)
        beat("run-due", f"{rid} {summary.line()}")  # the last successful run (/metrics)
        click.echo(f"run-due {rid}: {summary.line()}")
        for line in summary.details:
            click.echo(f"  {line}")
        if not loop_seconds:
            break
        close_session()
        time.sleep(loop_seconds)


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """The long-running scheduler: due steps, outboxes, reminders, snapshots, digest."""
    run_scheduler(current_app._get_current_object())

