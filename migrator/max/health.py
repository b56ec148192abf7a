"""Is Max still delivering our updates? The webhook subscription check.

Max drops a subscription after 8 hours of failed deliveries and tells nobody. The scheduler
calls :func:`check_subscription` every 10 minutes: when our webhook is expected (always in
production; elsewhere once ``flask max subscribe`` made one) and ``GET /subscriptions`` no
longer lists it, the loss is audited (``max.subscription_lost``), a system attention item is
raised (resolved by the first check that finds the subscription again), the admins get one
e-mail per incident (when the item is raised), and production subscribes again at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from flask_babel import force_locale, gettext
from sqlmodel import select

from migrator.attention.service import open_item, raise_item, resolve
from migrator.audit.service import record
from migrator.auth.models import User
from migrator.db import get_session, utcnow
from migrator.groups.attention import MAX_SUBSCRIPTION_LOST
from migrator.mail.service import queue_email, valid_address
from migrator.max import service
from migrator.max.client import MaxClient
from migrator.max.errors import MaxError
from migrator.waves.models import Setting

log = logging.getLogger("migrator.max")

WEBHOOK_KEY = "max.webhook"  # row in ``setting``: the URL we subscribed, while subscribed


@dataclass(frozen=True)
class SubscriptionCheck:
    expected: str | None  # the webhook URL that should be subscribed (None: polling)
    found: bool
    resubscribed: bool = False
    error: str | None = None

    @property
    def lost(self) -> bool:
        return self.expected is not None and not self.found


def remember_webhook(url: str | None) -> None:
    """Note that ``url`` is (or, with None, no longer is) our subscription; not committed."""
    session = get_session()
    row = session.get(Setting, WEBHOOK_KEY)
    if url is None:
        if row is not None:
            session.delete(row)
        return
    row = row or Setting(key=WEBHOOK_KEY, value="")
    row.value = url
    row.updated_at = utcnow()
    session.add(row)


def expected_webhook() -> str | None:
    """The webhook URL that should be subscribed now, if any."""
    if current_app.config["ENV"] == "production":
        return service.webhook_url()
    row = get_session().get(Setting, WEBHOOK_KEY)
    return row.value if row is not None and row.value else None


def _admin_emails() -> list[str]:
    rows = get_session().exec(select(User.email).where(User.role == "admin",
                                                       User.is_active.is_(True))).all()
    return sorted({e for e in rows if valid_address(e)})


def _mail_admins(url: str, resubscribed: bool, incident: int) -> int:
    with force_locale("ru"):
        subject = gettext("Migrator: Max stopped delivering updates to the webhook")
        text = gettext(
            "Max no longer lists the webhook subscription %(url)s: it drops one after 8 hours "
            "of failed deliveries. Updates (new chats, people pressing Start) may have been "
            "missed.", url=url)
        text += "\n\n" + (
            gettext("Migrator subscribed again. Check that the address answers, and register "
                    "chats missed meanwhile by their ID.") if resubscribed else
            gettext("Subscribe again with «flask max subscribe» once the address answers.")
        )
    queued = 0
    for addr in _admin_emails():
        queue_email(f"max.subscription_lost:{incident}:{addr}", addr, subject, text,
                    kind="max_subscription_lost")
        queued += 1
    return queued


def check_subscription(client: MaxClient) -> SubscriptionCheck:
    """Compare Max's subscriptions with ours; on a loss audit it, mail the admins and, in
    production, subscribe again. Commits its own work."""
    session = get_session()
    url = expected_webhook()
    session.commit()
    try:
        urls = {s.get("url") for s in client.get_subscriptions()}
    except MaxError as exc:
        # unknown: not taken as a loss (the next check asks again)
        return SubscriptionCheck(url, found=True, error=str(exc))
    if url is None or url in urls:
        if resolve("system", 0, MAX_SUBSCRIPTION_LOST):  # the subscription is back
            session.commit()
        return SubscriptionCheck(url, found=True)
    log.warning("the webhook subscription %s is gone", url)
    resubscribed, error = False, None
    if current_app.config["ENV"] == "production":
        try:
            client.subscribe(url, service.UPDATE_TYPES, current_app.config["MAX_WEBHOOK_SECRET"])
            resubscribed = True
        except MaxError as exc:
            error = str(exc)
    record("max.subscription_lost", object_type="max_bot",
           summary={"url": url, "resubscribed": resubscribed, "error": error})
    if resubscribed:
        record("max.subscribe", object_type="max_bot",
               summary={"url": url, "update_types": list(service.UPDATE_TYPES)})
    new_incident = open_item("system", 0, MAX_SUBSCRIPTION_LOST) is None
    item = raise_item("system", 0, MAX_SUBSCRIPTION_LOST, url=url)
    if new_incident:  # one e-mail per incident, not one per check
        _mail_admins(url, resubscribed, item.id)
    session.commit()
    return SubscriptionCheck(url, found=False, resubscribed=resubscribed, error=error)


def check_subscription_job() -> SubscriptionCheck | None:
    """The scheduler's entry point: None when no bot token is configured."""
    if not current_app.config.get("MAX_BOT_TOKEN"):
        return None
    with service.get_client() as client:
        return check_subscription(client)
