"""``flask demo ...`` and ``flask demo-actors``."""

from __future__ import annotations

import json
import time as _time

import click
import httpx
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import select

from migrator.audit.service import SYSTEM, acting_as
from migrator.db import get_session
from migrator.demo.actors import simulate_people
from migrator.demo.data import ADMIN, AUDITOR, COORDINATOR, REGION_NAME
from migrator.demo.seed import demo_present, seed_region, seed_small, snapshot_today_if_missing
from migrator.demo.stage import stage_sandbox
from migrator.engine.jobs import send_reminders
from migrator.org.models import Organisation
from migrator.sandbox.client import SandboxControl, SandboxControlError


@click.group("demo")
def demo_cli():
    """Demo data."""


@demo_cli.command("seed")
@click.option("--scale", type=click.Choice(["small", "region"]), default="small",
              show_default=True, help="region: thousands of organisations, for benchmarks")
@click.option("--orgs", default=2000, show_default=True, help="region scale: organisations")
@click.option("--groups", default=10000, show_default=True, help="region scale: source groups")
@click.option("--employees", default=60000, show_default=True, help="region scale: employees")
@click.option("--memberships", default=300000, show_default=True,
              help="region scale: group memberships")
@click.option("--audit-events", default=1_000_000, show_default=True,
              help="region scale: audit events")
@click.option("--waves", default=40, show_default=True, help="region scale: waves")
@click.option("--plan-all-groups", is_flag=True,
              help="region scale: every group in a wave (default: most groups with a chat)")
@with_appcontext
def seed_command(scale, orgs, groups, employees, memberships, audit_events, waves,
                 plan_all_groups):
    """Seed a demo region (idempotent); print the demo sign-ins."""
    t0 = _time.monotonic()
    with acting_as(SYSTEM):
        if demo_present():
            click.echo("Demo region already present; nothing to do.")
            snapshot_today_if_missing()
        else:
            stats = seed_small()
            click.echo("Demo region «{}» seeded: {}.".format(
                REGION_NAME, ", ".join(f"{k} {v}" for k, v in stats.items())))
        if scale == "region":
            session = get_session()
            if session.exec(select(Organisation).where(
                    Organisation.code.startswith("RS-M"))).first() is not None:
                click.echo("Region-scale data already present; nothing to do.")
            else:
                click.echo("Seeding region-scale data...")
                stats = seed_region(orgs=orgs, groups=groups, employees=employees,
                                    memberships=memberships, audit_events=audit_events,
                                    waves=waves, plan_all=plan_all_groups)
                click.echo("Region-scale data: " + json.dumps(stats))
    _stage_if_reachable(current_app.config["MAX_API_URL"])
    click.echo(f"Sign in as {ADMIN[0]} / {ADMIN[1]} (administrator), "
               f"{COORDINATOR[0]} / {COORDINATOR[1]} (coordinator, {COORDINATOR[2]}), "
               f"{AUDITOR[0]} / {AUDITOR[1]} (auditor).")
    click.echo(f"Done in {_time.monotonic() - t0:.1f}s.")


def _stage_if_reachable(url: str) -> None:
    """Every chat of the demo made in the Max sandbox at ``url``, when one answers there
    (``make run`` starts it after seeding and stages it then)."""
    try:
        with SandboxControl(url, timeout=3) as sandbox:
            sandbox.bot()
    except (SandboxControlError, httpx.HTTPError):
        click.echo("No Max sandbox answers at the Max API address; `make run` stages it.")
        return
    done = stage_sandbox(url)
    click.echo("Sandbox staged: " + ", ".join(f"{k} {v}" for k, v in done.items()) + ".")


@demo_cli.command("stage-sandbox")
@click.option("--sandbox-url", default=None, help="Default: MAX_API_URL.")
@click.option("--new-chats", is_flag=True,
              help="Also create two new chats with the bot in them (chat discovery).")
@with_appcontext
def stage_sandbox_command(sandbox_url, new_chats):
    """Mirror the demo's people and chats into the Max sandbox (idempotent)."""
    try:
        done = stage_sandbox(sandbox_url or current_app.config["MAX_API_URL"],
                             new_chats=new_chats)
    except (SandboxControlError, httpx.HTTPError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("Sandbox staged: " + ", ".join(f"{k} {v}" for k, v in done.items()) + ".")


@demo_cli.command("remind")
@with_appcontext
def remind_command():
    """Run the reminders job once now (the scheduler runs it hourly): `make run` uses it so
    that e-mails go out, and the demo actors press Start, within a minute of starting."""
    n = send_reminders()
    get_session().commit()
    click.echo(f"Reminders: {n} groups checked.")



@click.command("demo-actors")
@click.option("--sandbox-url", default=None, help="Default: MAX_API_URL.")
@click.option("--interval", default=3.0, show_default=True, help="Seconds between rounds.")
@click.option("--share", default=0.3, show_default=True,
              help="Share of the waiting people who press Start in each round.")
@click.option("--once", is_flag=True, help="One round, then exit.")
@with_appcontext
def demo_actors_command(sandbox_url, interval, share, once) -> None:
    """Play employees in the sandbox: press Start on the links of sent invitation e-mails."""
    simulate_people(sandbox_url or current_app.config["MAX_API_URL"],
                    current_app._get_current_object(), interval=interval, share=share,
                    once=once)
