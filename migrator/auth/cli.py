"""``flask users``: create, token, tokens, revoke-token, deactivate, activate."""

from __future__ import annotations

import sys

import click
import pyotp
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


def _user_or_fail(email: str):
    user = service.get_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no user {email!r}")
    return user


def _set_active(email: str, active: bool) -> None:
    user = _user_or_fail(email)
    with acting_as(CLI_ACTOR):
        service.set_active(user, active)
    get_session().commit()
    click.echo(f"User {user.email} {'activated' if active else 'deactivated'}.")


@users_cli.command("deactivate")
@click.argument("email")
@with_appcontext
def deactivate_command(email):
    """Deactivate EMAIL: sign-in, every session and every API token stop working."""
    _set_active(email, False)


@users_cli.command("activate")
@click.argument("email")
@with_appcontext
def activate_command(email):
    """Activate EMAIL again (sessions of before stay ended)."""
    _set_active(email, True)


@users_cli.command("tokens")
@click.argument("email")
@with_appcontext
def tokens_command(email):
    """List the API tokens of EMAIL: prefix, created, last used, expires, state (UTC)."""
    user = _user_or_fail(email)

    def when(value):
        return value.strftime("%Y-%m-%d %H:%M") if value else "-"

    click.echo("prefix      created           last used         expires           state")
    for t in service.user_tokens(user):
        click.echo(f"{t.prefix:<11} {when(t.created_at):<17} {when(t.last_used_at):<17} "
                   f"{when(t.expires_at):<17} {service.token_state(t)}")


@users_cli.command("revoke-token")
@click.argument("prefix")
@with_appcontext
def revoke_token_command(prefix):
    """Revoke the API token whose listed prefix is PREFIX."""
    found = service.tokens_by_prefix(prefix)
    if not found:
        raise click.ClickException(f"no token with prefix {prefix!r}")
    if len(found) > 1:
        raise click.ClickException(f"several tokens have the prefix {prefix!r}")
    with acting_as(CLI_ACTOR):
        changed = service.revoke_token(found[0])
    get_session().commit()
    click.echo(f"Token {prefix} revoked." if changed else f"Token {prefix} was revoked already.")


@users_cli.command("totp")
@click.argument("email")
@click.option("--off", is_flag=True, help="Remove the second factor.")
@with_appcontext
def totp_command(email, off):
    """Set up (or with --off remove) a TOTP second factor for EMAIL; prints the secret and
    the otpauth:// address to enrol an authenticator app."""
    user = _user_or_fail(email)
    with acting_as(CLI_ACTOR):
        secret = service.set_totp(user, not off)
    get_session().commit()
    if secret is None:
        click.echo(f"Second factor of {user.email} removed.")
        return
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="Migrator")
    click.echo(f"Secret: {secret}\n{uri}")
