"""``flask users create`` and ``flask users token``."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from migrator.audit.service import Actor, acting_as
from migrator.auth import service
from migrator.auth.models import ROLES
from migrator.db import get_session

CLI_ACTOR = Actor("system", "cli", "command line")


@click.group("users")
def users_cli():
    """Manage users and API tokens."""


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--org", "orgs", multiple=True, help="Organisation code of the user's scope.")
@click.option("--name", default="", help="Full name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def create_command(email, role, orgs, name, password_stdin):
    """Create or update a user EMAIL with a role and organisation scopes."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with acting_as(CLI_ACTOR):
            user = service.create_user(email, password, role, list(orgs), full_name=name)
    except service.AuthError as exc:
        get_session().rollback()
        raise click.ClickException(str(exc)) from exc
    get_session().commit()
    click.echo(f"User {user.email} ({user.role}) saved.")


@users_cli.command("token")
@click.argument("email")
@with_appcontext
def token_command(email):
    """Print a new API token for the user EMAIL."""
    user = service.get_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no user {email!r}")
    with acting_as(CLI_ACTOR):
        token = service.create_api_token(user)
    get_session().commit()
    click.echo(token)
