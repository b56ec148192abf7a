"""``flask max ...``: webhook subscription, status, long polling, pre-flight refresh."""

from __future__ import annotations

import time

import click
import sqlalchemy as sa
from flask import current_app

from migrator.audit.service import Actor, acting_as, record
from migrator.db import get_session
from migrator.max import health, service, updates
from migrator.max.errors import MaxError
from migrator.max.models import MaxChat
from migrator.org.models import Organisation

CLI_ACTOR = Actor("system", "cli", "flask max")


def _client(**kwargs):
    try:
        return service.get_client(**kwargs)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("max")
def max_cli():
    """The Max bot: webhook subscription, status, long polling, chat re-checks."""


@max_cli.command("subscribe")
def subscribe_command():
    """Subscribe MIGRATOR_BASE_URL/max/webhook to the bot's updates, with the secret."""
    secret = current_app.config["MAX_WEBHOOK_SECRET"]
    if not secret:
        raise click.ClickException("MAX_WEBHOOK_SECRET is not set: the webhook would refuse "
                                   "every update")
    url = service.webhook_url()
    with acting_as(CLI_ACTOR), _client() as client:
        try:
            client.subscribe(url, service.UPDATE_TYPES, secret)
        except MaxError as exc:
            raise click.ClickException(f"subscription failed: {exc}") from exc
        record("max.subscribe", object_type="max_bot",
               summary={"url": url, "update_types": list(service.UPDATE_TYPES)})
        health.remember_webhook(url)
        get_session().commit()
    click.echo(f"Subscribed {url} to {', '.join(service.UPDATE_TYPES)}.")


@max_cli.command("unsubscribe")
@click.option("--url", default=None, help="The subscription URL (default: our webhook).")
def unsubscribe_command(url: str | None):
    """Remove a webhook subscription (e.g. to switch to long polling)."""
    url = url or service.webhook_url()
    with acting_as(CLI_ACTOR), _client() as client:
        try:
            client.unsubscribe(url)
        except MaxError as exc:
            raise click.ClickException(f"unsubscribing failed: {exc}") from exc
        record("max.unsubscribe", object_type="max_bot", summary={"url": url})
        if url == service.webhook_url():
            health.remember_webhook(None)
        get_session().commit()
    click.echo(f"Unsubscribed {url}.")


@max_cli.command("status")
def status_command():
    """The bot (from /me), its webhook subscriptions and the chats known by status."""
    with acting_as(CLI_ACTOR), _client() as client:
        try:
            me = client.get_me()
            subs = client.get_subscriptions()
        except MaxError as exc:
            raise click.ClickException(f"Max did not answer: {exc}") from exc
    click.echo(f"Bot: {me.get('first_name') or me.get('name') or '?'} "
               f"@{me.get('username') or '?'} (user_id {me.get('user_id')})")
    click.echo(f"API: {current_app.config['MAX_API_URL']}")
    if subs:
        for sub in subs:
            types = ", ".join(sub.get("update_types") or ["all"])
            click.echo(f"Webhook: {sub.get('url')} ({types})")
    else:
        click.echo("Webhook: none (use `flask max poll` or `flask max subscribe`)")
    session = get_session()
    counts = dict(session.execute(
        sa.select(MaxChat.status, sa.func.count()).group_by(MaxChat.status)).all())
    click.echo("Chats: " + ", ".join(f"{s} {counts.get(s, 0)}"
                                     for s in ("discovered", "linked", "removed")))
    click.echo(f"Updates waiting to be processed: {updates.pending_count()}")
    session.commit()


@max_cli.command("poll")
@click.option("--once", is_flag=True, help="Process one batch of updates and exit.")
@click.option("--force", is_flag=True, help="Poll even though a webhook is subscribed.")
@click.option("--timeout", default=30, show_default=True, help="Long-polling timeout, s.")
def poll_command(once: bool, force: bool, timeout: int):
    """Long polling for installations without public HTTPS (not for production).

    The marker is kept in the database, so each run resumes where the last one stopped;
    the very first run (no marker yet) gets only the last waiting update, as the schema
    says: register chats missed before with `flask max register-chat`."""
    with acting_as(CLI_ACTOR), _client(timeout=10.0) as client:
        try:
            subs = client.get_subscriptions()
        except MaxError as exc:
            raise click.ClickException(f"Max did not answer: {exc}") from exc
        if subs and not force:
            raise click.ClickException(
                "a webhook subscription exists (" + ", ".join(s.get("url", "?") for s in subs)
                + "); Max delivers no updates to polling then. Use --force to poll anyway.")
        # Resume from the stored marker: without one Max returns only the last update.
        marker = service.stored_poll_marker()
        get_session().commit()
        total = 0
        while True:
            try:
                batch = client.get_updates(marker=marker, timeout=0 if once else timeout,
                                           types=service.UPDATE_TYPES)
            except MaxError as exc:
                if once:
                    raise click.ClickException(f"polling failed: {exc}") from exc
                click.echo(f"polling failed, retrying: {exc}", err=True)
                time.sleep(5)
                continue
            for update in batch.updates:
                result = updates.intake(update)
                get_session().commit()
                if not result.duplicate and result.refresh_chat_id is not None:
                    service.refresh_chat(result.refresh_chat_id, client)
                total += 1
            # stored only once the batch is taken in: a crash re-reads it (intake dedups)
            marker = batch.marker if batch.marker is not None else marker
            service.store_poll_marker(marker)
            get_session().commit()
            if batch.updates:
                click.echo(f"{len(batch.updates)} update(s) processed")
            if once:
                break
    click.echo(f"Done: {total} update(s).")


@max_cli.command("check-subscription")
def check_subscription_command():
    """Is our webhook still subscribed? If Max dropped it: audit, e-mail the admins and, in
    production, subscribe again (the scheduler does this every 10 minutes)."""
    with acting_as(CLI_ACTOR), _client() as client:
        result = health.check_subscription(client)
    if result.found and result.error:
        raise click.ClickException(f"Max did not answer: {result.error}")
    if result.expected is None:
        click.echo("No webhook expected (long polling).")
    elif result.found:
        click.echo(f"Webhook subscribed: {result.expected}")
    elif result.resubscribed:
        click.echo(f"The webhook subscription was gone; subscribed again: {result.expected}")
    else:
        raise click.ClickException(f"The webhook subscription {result.expected} is gone"
                                   + (f" ({result.error})" if result.error else ""))


@max_cli.command("register-chat", context_settings={"ignore_unknown_options": True})
@click.argument("chat_id", type=int)
@click.option("--org", "org_code", default=None, help="Organisation code the chat serves.")
def register_chat_command(chat_id: int, org_code: str | None):
    """Make a chat known whose bot_added was missed (outage, bot added before subscribing):
    fetched with GET /chats/CHAT_ID, the bot must be in it. Group chat ids are negative
    (e.g. -70000000001) and are accepted as they are."""
    org_id = None
    if org_code:
        org = get_session().scalar(sa.select(Organisation).where(Organisation.code == org_code))
        if org is None:
            raise click.ClickException(f"no organisation with code {org_code!r}")
        org_id = org.id
    with acting_as(CLI_ACTOR), _client() as client:
        try:
            chat, created = service.register_chat(chat_id, client, org_id=org_id)
        except service.RegisterError as exc:
            raise click.ClickException(REGISTER_ERRORS.get(exc.code, exc.code)
                                       + (f" ({exc.detail})" if exc.detail else "")) from exc
    if not created:
        click.echo(f"Chat {chat_id} {chat.title!r} is already known ({chat.status}).")
        return
    missing = ", ".join(chat.missing_permissions)
    click.echo(f"Registered chat {chat_id} {chat.title!r} ({chat.status})"
               + (f"; the bot still lacks: {missing}" if missing else "; rights complete") + ".")


REGISTER_ERRORS = {
    "not_found": "Max knows no chat with this ID",
    "bot_not_in_chat": "the bot is not in this chat: add it as an administrator first",
    "not_a_chat": "this is not a group chat",
    "unavailable": "Max did not answer",
}


@max_cli.command("process-pending")
def process_pending_command():
    """Retry stored updates that were not processed, then re-check new chats."""
    done, left, refreshed = updates.catch_up()
    click.echo(f"Updates processed: {done}; still pending: {left}")
    click.echo(f"Chats re-checked: {refreshed}")


@max_cli.command("refresh")
def refresh_command():
    """Pre-flight: re-check the title and the bot's rights in every chat it is in."""
    session = get_session()
    ids = list(session.scalars(sa.select(MaxChat.chat_id).where(MaxChat.status != "removed")
                               .order_by(MaxChat.id)).all())
    session.commit()
    problems = 0
    with acting_as(CLI_ACTOR), _client() as client:
        for chat_id in ids:
            error = service.refresh_chat(chat_id, client)
            chat = service.chat_by_max_id(chat_id)
            missing = chat.missing_permissions
            session.commit()
            if error or missing:
                problems += 1
                detail = error or "missing " + ", ".join(missing)
                click.echo(f"{chat_id} {chat.title!r}: {detail}")
    click.echo(f"Checked {len(ids)} chat(s); {problems} not ready.")
