"""``flask run-due``, ``flask scheduler`` and ``flask groups rollback``."""

from __future__ import annotations

import logging
import time

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import select

from migrator.audit.service import Actor, acting_as
from migrator.db import close_session, get_session
from migrator.engine import rollback
from migrator.engine.jobs import beat
from migrator.engine.maxclient import client_factory
from migrator.engine.runner import run_due, runner_id
from migrator.engine.scheduler import run_scheduler
from migrator.groups.models import SourceGroup

log = logging.getLogger("migrator.engine")


@click.command("run-due")
@click.option("--limit", default=5, show_default=True,
              help="Steps claimed at a time (each claim has its own short lease).")
@click.option("--no-mail", is_flag=True, help="Do not send the e-mail and bot outboxes.")
@click.option("--loop", "loop_seconds", type=float, default=0,
              help="Repeat until killed (a plain worker): at once after a pass that found "
                   "work, N seconds after an idle one.")
@with_appcontext
def run_due_command(limit: int, no_mail: bool, loop_seconds: float) -> None:
    """Run the steps that are due now once (cron-friendly), send the outboxes, then exit."""
    rid = runner_id()
    while True:
        try:
            summary = run_due(rid, limit=limit, send_mail=not no_mail)
        except Exception:  # a worker outlives one bad pass: the next pass tries again
            if not loop_seconds:
                raise
            get_session().rollback()
            log.exception("run-due pass failed; the next one starts in %s s", loop_seconds)
            close_session()
            time.sleep(loop_seconds)
            continue
        beat("run-due", f"{rid} {summary.line()}")  # the last successful run (/metrics)
        click.echo(f"run-due {rid}: {summary.line()}")
        for line in summary.details:
            click.echo(f"  {line}")
        if not loop_seconds:
            break
        close_session()
        if not summary.busy:  # work left (a step, an outbox with its time up): at once
            time.sleep(loop_seconds)


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """The long-running scheduler: due steps, outboxes, reminders, snapshots, digest."""
    run_scheduler(current_app._get_current_object())



@click.group("groups")
def groups_cli():
    """Source groups: undo a group's move."""


@groups_cli.command("rollback")
@click.argument("key")
@click.option("--reason", required=True, help="Why the move is undone (kept in the audit).")
@click.option("--later", is_flag=True,
              help="Only record the request; the next run-due carries it out.")
@with_appcontext
def rollback_command(key: str, reason: str, later: bool) -> None:
    """Undo a group's move: remove the members the tool brought into the Max chat, unpin
    its announcement, unlink the group and cancel its remaining steps."""
    session = get_session()
    actor = Actor("system", "cli", "flask groups rollback")
    group = session.exec(select(SourceGroup).where(SourceGroup.key == key)).first()
    if group is None:
        raise click.ClickException(f"no group with the key {key!r}")
    with acting_as(actor):
        try:
            rb = rollback.request_rollback(group, None, reason)
        except rollback.RollbackRefused as exc:
            session.rollback()
            raise click.ClickException(exc.message) from exc
        session.commit()
        click.echo(f"rollback {rb.id} of group {key} requested "
                   f"({rb.steps_skipped} step(s) cancelled)")
        if later:
            return
        rollback.process_due(runner_id(), client_factory(), only=rb.id, actor=actor)
    session.refresh(rb)
    if rb.status == "done":
        click.echo(f"done: {rb.removed} removed from the Max chat, {rb.absent} gone already, "
                   f"{rb.kept} kept; announcement "
                   f"{'unpinned' if rb.unpinned else 'not pinned any more'}; group unlinked")
    else:
        click.echo(f"{rb.status}: {rb.last_error or 'the next run-due continues'}")
        if rb.status == "failed":
            raise SystemExit(1)
